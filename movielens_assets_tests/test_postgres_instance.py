"""The Dagster instance on PostgreSQL (config/dagster-postgres.yaml, dagster-postgres): a throwaway server on
127.0.0.1, the ranking upstream materialized once into it, then the 3 `ranking_samples` shards as 3 PARALLEL
`dagster asset materialize --partition NN` processes against it; the run history, the per-partition
materializations and their checks are read back through `DagsterInstance` and straight from the database's tables.

Skips only where no PostgreSQL server binary exists (servers/postgres.py says where it looks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from movielens_assets_tests.helpers import FAST_TWO_TOWER, failure_messages, make_settings, materialize
from movielens_assets_tests.servers.postgres import NO_POSTGRES, find_pg_bin, throwaway_postgres

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "config" / "dagster-postgres.yaml"
SHARDS = ("00", "01", "02")
UPSTREAM = ("group:ingest or group:tmdb or group:features or group:recall or key:user_sequences "
            "or key:item_profile or key:user_profile")
PG_VARIABLES = {"hostname": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USERNAME",
                "password": "DAGSTER_PG_PASSWORD", "db_name": "DAGSTER_PG_DB"}
#: Variables the project and Dagster read: never inherited by the CLI processes from the developer's shell.
PROJECT_ENV_PREFIXES = ("MOVIELENS_", "DAGSTER_", "TMDB_", "EMBEDDING_", "OPENAI_")


def test_the_postgres_template_is_the_default_instance_with_postgres_storage(tmp_path, monkeypatch):
    """Same settings as config/dagster.yaml plus `storage: postgres` whose every connection field comes from a
    DAGSTER_PG_* variable; Dagster's own instance schema accepts it (and names a missing variable)."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster_postgres import DagsterPostgresStorage

    template = yaml.safe_load(TEMPLATE.read_text())
    default = yaml.safe_load((REPO_ROOT / "config" / "dagster.yaml").read_text())
    assert {k: v for k, v in template.items() if k != "storage"} == default
    assert template["storage"] == {"postgres": {"postgres_db": {
        **{k: {"env": v} for k, v in PG_VARIABLES.items()}, "scheme": "postgresql+psycopg2"}}}

    (tmp_path / "dagster.yaml").write_text(TEMPLATE.read_text())
    config, custom_class = dagster_instance_config(str(tmp_path))  # the instance schema (structure)
    assert custom_class is None
    assert config["concurrency"] == default["concurrency"] and config["telemetry"] == {"enabled": False}
    storage_type = resolve_to_config_type(DagsterPostgresStorage.config_type())

    for variable in PG_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    missing = process_config(storage_type, config["storage"]["postgres"])  # what loading the instance does
    assert not missing.success
    assert {v for v in PG_VARIABLES.values() if any(v in e.message for e in missing.errors)} == set(
        PG_VARIABLES.values())
    for variable, value in zip(PG_VARIABLES.values(), ["db.internal", "6543", "dagster", "", "dagster"], strict=True):
        monkeypatch.setenv(variable, value)
    resolved = process_config(storage_type, config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"] == {"hostname": "db.internal", "port": 6543, "username": "dagster",
                                             "password": "", "db_name": "dagster", "params": {},
                                             "scheme": "postgresql+psycopg2"}


@pytest.fixture(scope="module")
def postgres():
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(NO_POSTGRES)
    with throwaway_postgres(bin_dir) as server:  # stopped (pg_ctl stop -m fast) however the test ends
        yield server


def _cli_env(home: Path, data_dir: Path, model_dir: Path, pg_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    return {**env, **pg_env, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(data_dir),
            "MOVIELENS_DATASET": "synthetic-tiny", "MOVIELENS_RANKING_SHARDS": str(len(SHARDS)),
            "MOVIELENS_DEVICE": "cpu", "EMBEDDING_MODEL": str(model_dir)}


@pytest.mark.slow
def test_parallel_shard_runs_share_one_postgres_instance(postgres, tmp_path, tiny_model_dir, monkeypatch):
    import psycopg2
    from dagster._core.storage.dagster_run import DagsterRunStatus

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TEMPLATE.read_text())  # the template, verbatim
    for variable, value in postgres.env().items():
        monkeypatch.setenv(variable, value)  # the in-process instance below resolves the template's env: keys
    settings = make_settings(tmp_path, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir), MOVIELENS_DEVICE="cpu",
                             MOVIELENS_RANKING_SHARDS=str(len(SHARDS)))

    # 1. what every shard reads, once, in process, recorded in PostgreSQL
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        up = materialize(settings, instance, UPSTREAM, {"ops": {"two_tower_recall": {"config": FAST_TWO_TOWER}}})
        assert up.success, failure_messages(up)

    # 2. the shards as parallel runs: one CLI process each, started together, against the same instance
    env = _cli_env(home, settings.data_dir, tiny_model_dir, postgres.env())
    dagster_cli = str(Path(sys.executable).parent / "dagster")
    start = time.perf_counter()
    procs = {key: subprocess.Popen([dagster_cli, "asset", "materialize", "-m", "movielens_assets.definitions",
                                    "--select", "ranking_samples", "--partition", key],
                                   env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for key in SHARDS}
    outputs = {}
    try:
        for key, proc in procs.items():
            outputs[key] = proc.communicate(timeout=600)[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    parallel_s = time.perf_counter() - start
    for key, proc in procs.items():
        assert proc.returncode == 0, (key, outputs[key][-4000:])
    print(f"3 parallel shard runs against PostgreSQL: {parallel_s:.1f}s")

    # 3. the run history and the materializations, through Dagster
    samples = dg.AssetKey("ranking_samples")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records()
        assert len(records) == 1 + len(SHARDS)
        assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records), [
            (r.dagster_run.run_id, r.dagster_run.status) for r in records]
        shard_runs = {r.dagster_run.tags.get("dagster/partition"): r for r in records
                      if r.dagster_run.asset_selection == {samples}}
        assert set(shard_runs) == set(SHARDS)
        # they ran at the same time (started together, each ~3-10 s): at least two overlapped — concurrent writers
        spans = sorted((r.start_time, r.end_time) for r in shard_runs.values())
        assert any(start < max(end for _, end in spans[:i]) for i, (start, _) in enumerate(spans) if i), spans
        assert instance.get_materialized_partitions(samples) == set(SHARDS)
        for key, record in shard_runs.items():
            (mat,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=samples, asset_partitions=[key]), limit=10).records
            assert mat.run_id == record.dagster_run.run_id and mat.partition_key == key
            assert mat.asset_materialization.metadata["dagster/row_count"].value > 0
            checks = [e.asset_check_evaluation for e in instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
            assert checks and all(c.passed for c in checks), (key, checks)
            assert (settings.data_dir / "ranking" / "samples" / "last_n" / f"shard={key}" / "part-0.parquet").is_file()
        run_ids = {r.dagster_run.run_id for r in records}

    # 4. ... and where it lives: PostgreSQL's tables, no sqlite database in DAGSTER_HOME
    conn = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user, dbname=postgres.db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs")
            assert dict(cur.fetchall()) == {run_id: "SUCCESS" for run_id in run_ids}
            cur.execute("SELECT partition, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                        "AND asset_key = %s GROUP BY partition", (samples.to_string(),))
            assert dict(cur.fetchall()) == {key: 1 for key in SHARDS}
    finally:
        conn.close()
    assert not [p for p in home.rglob("*") if p.suffix in {".db", ".sqlite"}]
