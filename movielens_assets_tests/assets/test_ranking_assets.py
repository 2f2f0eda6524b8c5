"""The ranking group on synthetic-tiny: sequences and profiles, then every shard of `ranking_samples` as its
own partition run (in process and through the real CLI), the blocking checks (passing on the output, failing
on a corrupted copy of it), one shard rebuilt alone, bad partition keys and missing inputs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from movielens_assets.assets.ranking import SAMPLE_CHECKS
from movielens_assets_tests.helpers import FAST_TWO_TOWER, TINY_RANKER, failure_messages, make_settings, materialize

KEYS = ("00", "01", "02")
UPSTREAM = ("group:ingest or group:tmdb or group:features or group:recall or key:user_sequences "
            "or key:item_profile or key:user_profile")


def _digest(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("ranking")
    settings = make_settings(tmp, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir), MOVIELENS_DEVICE="cpu",
                             MOVIELENS_RANKING_SHARDS="3")
    run_config = {"ops": {"two_tower_recall": {"config": FAST_TWO_TOWER}}}
    with dg.instance_for_test() as instance:
        up = materialize(settings, instance, UPSTREAM, run_config)
        assert up.success, failure_messages(up)
        mats = {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
                for e in up.get_asset_materialization_events()}
        shards = {}
        for key in KEYS:
            result = materialize(settings, instance, "key:ranking_samples", partition_key=key)
            assert result.success, failure_messages(result)
            shards[key] = result
    return settings, mats, shards


def test_every_shard_is_built_and_passes_its_blocking_checks(lake):
    settings, _, shards = lake
    root = settings.data_dir / "ranking" / "samples" / "last_n"
    con = duckdb.connect()
    users, total = [], 0
    for key, result in shards.items():
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {name: True for name in SAMPLE_CHECKS}, (key, checks)
        mat = result.get_asset_materialization_events()[0]
        assert mat.partition == key
        path = root / f"shard={key}" / "part-0.parquet"
        n, n_pos = con.execute(f"SELECT count(*), sum(watch) FROM '{path}'").fetchone()
        assert n == 10 * n_pos > 0 and mat.step_materialization_data.materialization.metadata[
            "dagster/row_count"].value == n
        users.append({u for (u,) in con.execute(f"SELECT DISTINCT user_id FROM '{path}'").fetchall()})
        total += n_pos
    assert all(not (a & b) for i, a in enumerate(users) for b in users[i + 1 :])
    store_users = np.load(settings.data_dir / "ranking" / "sequences" / "last_n" / "user_ids.npy")
    assert set().union(*users) == set(store_users.tolist())


def test_rebuilding_one_shard_touches_no_other(lake):
    settings, _, _ = lake
    root = settings.data_dir / "ranking" / "samples" / "last_n"
    before = {key: _digest(root / f"shard={key}" / "part-0.parquet") for key in KEYS}
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:ranking_samples", partition_key="01")
    assert result.success, failure_messages(result)
    after = {key: _digest(root / f"shard={key}" / "part-0.parquet") for key in KEYS}
    assert after["00"] == before["00"] and after["02"] == before["02"]
    assert after["01"][0] != before["01"][0] and after["01"][1] == before["01"][1]  # rewritten, same content
    assert sorted(p.name for p in root.iterdir()) == [f"shard={k}" for k in KEYS]  # no temporary left


def test_user_profile_equals_the_features_of_the_window_samples(lake):
    """The window samples' user features are exactly the user_profile rows at the window start: one function."""
    settings, mats, _ = lake
    base = settings.data_dir / "ranking"
    con = duckdb.connect()
    (mismatch, compared) = con.execute(f"""
        WITH s AS (SELECT DISTINCT user_id, cutoff_ts, seq_pos, u_log_count, u_mean_rating, u_like_rate,
                          u_days_since_last FROM '{base}/samples/last_n/*/*.parquet' WHERE in_window = 1)
        SELECT count(*) FILTER (WHERE p.cutoff_ts <> s.cutoff_ts OR p.seq_pos <> s.seq_pos
                                OR p.u_log_count <> s.u_log_count OR p.u_mean_rating IS DISTINCT FROM s.u_mean_rating
                                OR p.u_like_rate IS DISTINCT FROM s.u_like_rate
                                OR p.u_days_since_last IS DISTINCT FROM s.u_days_since_last), count(*)
        FROM s JOIN '{base}/profiles/last_n/user_profile.parquet' p ON p.user_id = s.user_id AND p.stage = 'window'
    """).fetchone()
    assert compared > 0 and mismatch == 0
    (test_rows,) = con.execute(f"SELECT count(*) FROM '{base}/profiles/last_n/user_profile.parquet' "
                               "WHERE stage = 'test'").fetchone()
    assert test_rows > 0 and mats["user_profile"]["dagster/row_count"].value >= test_rows
    coverage = mats["item_profile"]["coverage"].value
    assert coverage["with_embedding"] > 0 and coverage["with_director"] > 0  # TMDb + embeddings were used


def test_ranking_group_wiring():
    from movielens_assets.definitions import build_definitions
    from movielens_assets.settings import load_settings

    defs = build_definitions(load_settings({"MOVIELENS_RANKING_SHARDS": "5"}))
    graph = defs.resolve_asset_graph()
    group = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ranking"}
    assert {"user_sequences", "item_profile", "user_profile", "ranking_samples"} <= group
    samples = graph.get(dg.AssetKey("ranking_samples"))
    assert samples.partitions_def.get_partition_keys() == ["00", "01", "02", "03", "04"]
    for name in SAMPLE_CHECKS:
        assert graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("ranking_samples"), name)).blocking
    parents = {k.to_user_string() for k in samples.parent_keys}
    assert {"user_sequences", "item_profile", "recall_candidates", "ratings"} <= parents


def test_an_unknown_shard_key_is_refused(lake):
    settings, _, _ = lake
    with dg.instance_for_test() as instance, pytest.raises(Exception, match="07"):
        materialize(settings, instance, "key:ranking_samples", partition_key="07")


def test_a_shard_before_its_inputs_fails_clearly_and_writes_nothing(tmp_path):
    settings = make_settings(tmp_path, "synthetic-tiny", MOVIELENS_RANKING_SHARDS="3")
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:ranking_samples", partition_key="00")
    assert not result.success
    message = " ".join(failure_messages(result))
    assert "materialize `recall_candidates` first" in message
    assert not (settings.data_dir / "ranking" / "samples").exists()


@pytest.mark.slow
def test_cli_materializes_one_shard(lake, tmp_path):
    """`dagster asset materialize --select ranking_samples --partition 02`, the real CLI, on the built lake."""
    settings, _, _ = lake
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(settings.data_dir),
           "MOVIELENS_DATASET": "synthetic-tiny", "MOVIELENS_RANKING_SHARDS": "3"}
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "dagster"), "asset", "materialize", "-m", "movielens_assets.definitions",
           "--select", "ranking_samples", "--partition", "02"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "shard 02" in proc.stdout + proc.stderr
    bad = subprocess.run([*cmd[:-1], "99"], env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "99" in bad.stdout + bad.stderr


def test_ranking_eda_reports_every_feature(lake):
    settings, _, _ = lake
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:ranking_eda")
    assert result.success, failure_messages(result)
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    report = (settings.data_dir / "reports" / "RANKING_EDA.md").read_text()
    assert report.startswith("# Ranking EDA — `synthetic-tiny`") and "| `ch_merged_rank` | recall |" in report
    assert "`in_window`" not in report and "`shard`" not in report  # key columns are not features
    assert 0.0 <= meta["auc_watch/i_log_count"].value <= 1.0
    assert meta["report"].value == report and "| `i_log_count` |" in meta["report"].value  # its table, in the UI
    for group in ("user", "item", "cross", "recall"):
        assert (settings.data_dir / "reports" / f"ranking_eda_{group}.png").stat().st_size > 1000


RANKER_CHECKS = {("unified_ranker", "checkpoint_reproduces_validation_scores"),
                 ("unified_ranker", "finite_parameters_and_training_log"),
                 ("ranked_recommendations", "valid_recommendation_lists"),
                 ("ranking_metrics", "ranking_metrics_complete")}


@pytest.fixture(scope="module")
def ranker(lake):
    """unified_ranker (+ two ablations), ranked_recommendations and ranking_metrics materialized in one run."""
    settings, _, _ = lake
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:unified_ranker or key:ranked_recommendations or "
                                                 "key:ranking_metrics",
                             {"ops": {"unified_ranker": {"config": TINY_RANKER},
                                      "ranked_recommendations": {"config": {"top_n": 10}}}})
    assert result.success, failure_messages(result)
    return settings, result


def test_the_ranker_its_lists_and_metrics(ranker):
    """The checkpoint and its checks, the final lists (top 10, ranks from the ranker) and their check, and
    ranking.json with every documented key (its table in the metadata)."""
    from movielens_assets.core.ranking.report import LIST_METRICS, missing_keys

    settings, result = ranker
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {key: True for key in RANKER_CHECKS}
    mats = {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    ranker = mats["unified_ranker"]
    assert ranker["device"].value == "cpu" and ranker["samples_per_s"].value > 0
    assert [e["epoch"] for e in ranker["training_curve"].value] == [1]
    assert Path(ranker["training_curve_plot"].value).stat().st_size > 1000
    # the same PNG inline (a data URI in Markdown: the UI's Markdown renderer shows it)
    chart = ranker["training_curve_chart"].value
    prefix = "![training loss and validation GAUC per epoch](data:image/png;base64,"
    assert chart.startswith(prefix) and chart.endswith(")")
    png = base64.b64decode(chart[len(prefix):-1])
    assert png == Path(ranker["training_curve_plot"].value).read_bytes() and len(png) < 100_000
    models = settings.data_dir / "models" / "ranking" / "last_n"
    assert {p.name for p in (models / "ablations").iterdir()} == {"full_same_budget", "no_recall_features"}
    for name in ("model.pt", "model_config.json", "vocab.npz", "normalizer.json", "item_tables.npz", "check.npz"):
        assert (models / "unified_ranker" / name).is_file(), name
    meta = json.loads((models / "unified_ranker" / "meta.json").read_text())
    assert meta["data"]["dataset"] == "synthetic-tiny" and len(meta["data"]["shards"]) == 3
    con = duckdb.connect()
    rec = settings.data_dir / "ranking" / "recommendations" / "last_n"
    per_user, max_rank, bad_order = con.execute(f"""
        SELECT max(n), max(r), count(*) FILTER (WHERE NOT ok) FROM (
          SELECT user_id, count(*) AS n, max(rank) AS r,
                 bool_and(rank = 1 OR p_watch <= lag_p) AS ok FROM (
            SELECT *, lag(p_watch) OVER (PARTITION BY user_id ORDER BY rank) AS lag_p FROM '{rec}/ranked.parquet')
          GROUP BY user_id)""").fetchone()
    assert per_user <= 10 and max_rank <= 10 and bad_order == 0
    report = json.loads((settings.data_dir / "metrics" / "ranking.json").read_text())
    assert missing_keys(report) == [] and report["dataset"] == "synthetic-tiny" and report["protocol"] == "last_n"
    assert set(report["ablations"]) == {"full_same_budget", "no_recall_features"}
    assert set(report["final"]) == set(LIST_METRICS) and "two_tower" in report["channels"]
    assert report["users"] == mats["ranked_recommendations"]["users"].value > 0
    assert "| **final (ranker)** |" in (settings.data_dir / "metrics" / "ranking.md").read_text()
    table = mats["ranking_metrics"]["table"].value  # the metrics table, shown in the UI
    assert table == (settings.data_dir / "metrics" / "ranking.md").read_text() and "| **final (ranker)** |" in table


def test_ranking_metrics_check_fails_on_a_broken_file(lake, tmp_path):
    from movielens_assets.checks.ranking import ranking_metrics_complete
    from movielens_assets.resources import DataLake

    lake_res = DataLake(root=str(tmp_path / "lake"))
    lake_res.metrics_dir.mkdir(parents=True)
    (lake_res.metrics_dir / "ranking.json").write_text('{"dataset": "x"')  # truncated
    assert not ranking_metrics_complete(lake_res).passed
    (lake_res.metrics_dir / "ranking.json").write_text('{"dataset": "x"}')
    result = ranking_metrics_complete(lake_res)
    assert not result.passed and "protocol" in result.metadata["missing_keys"].value


def _rewrite(path: Path, select: str) -> None:
    """Replace the Parquet file at `path` by `select` over its rows (`src`), keeping its column types."""
    con = duckdb.connect()
    tmp = path.with_suffix(".new")
    con.execute(f"COPY (WITH src AS (SELECT * FROM read_parquet('{path}')) {select}) TO '{tmp}' (FORMAT parquet)")
    tmp.replace(path)


RANKED_CORRUPTIONS = {
    # the first user's first train movie appended below their list
    "seen_item": ("ranked", """SELECT * FROM src UNION ALL
        SELECT t.user_id, t.movie_id, (SELECT max(rank) + 1 FROM src s WHERE s.user_id = t.user_id)::INTEGER,
               NULL::INTEGER, ['itemcf'], 0.0::FLOAT, 0.0::FLOAT
        FROM (SELECT user_id, min(movie_id) AS movie_id FROM train WHERE user_id = (SELECT min(user_id) FROM src)
              GROUP BY 1) t""", "ranked last_n: 1 candidates already in the user's train split"),
    "nan_probability": ("scored_candidates", "SELECT * REPLACE (CASE WHEN rank = 2 THEN 'nan'::FLOAT ELSE p_like END "
                                             "AS p_like) FROM src", "non-finite or NULL p_like values"),
    "above_one": ("ranked", "SELECT * REPLACE (CASE WHEN rank = 1 THEN 1.5::FLOAT ELSE p_watch END AS p_watch) "
                            "FROM src", "p_watch values outside [0, 1]"),
    "misordered": ("ranked", "SELECT * REPLACE (CASE WHEN rank = 1 THEN 2 WHEN rank = 2 THEN 1 ELSE rank END AS rank) "
                             "FROM src WHERE user_id = (SELECT min(user_id) FROM src)",
                   "p_watch is above that of the row ranked before them"),
    "missing_column": ("ranked", "SELECT * EXCLUDE (channels) FROM src", "ranked last_n: missing column(s) channels"),
}


@pytest.mark.parametrize("case", sorted(RANKED_CORRUPTIONS))
def test_recommendation_check_fails_on_a_corrupted_file(ranker, tmp_path, case):
    """A copy of the materialized recommendations passes `valid_recommendation_lists`; a corrupted file fails it,
    named with what is wrong in the check's description."""
    from movielens_assets.checks.ranking import valid_recommendation_lists
    from movielens_assets.resources import DataLake

    settings, _ = ranker
    copy = DataLake(root=str(tmp_path / "lake"))
    for part in ("recall/splits/last_n", "ranking/recommendations/last_n"):
        shutil.copytree(settings.data_dir / part, copy.root_path / part)
    assert valid_recommendation_lists(copy).passed
    name, select, phrase = RANKED_CORRUPTIONS[case]
    train = copy.recall_dir / "splits" / "last_n" / "train.parquet"
    _rewrite(copy.ranking_dir / "recommendations" / "last_n" / f"{name}.parquet",
             select.replace("FROM train", f"FROM read_parquet('{train}')"))
    result = valid_recommendation_lists(copy)
    assert not result.passed and phrase in result.description, result.description
    assert result.description.startswith(f"{name} last_n: ") and result.metadata["failed_files"].value == 1


def test_ranker_check_fails_on_a_nan_weight_an_empty_log_or_no_plot(ranker, tmp_path):
    """A copy of the trained checkpoints passes `finite_parameters_and_training_log`; a NaN weight in the full
    model, an ablation without its training log, or the missing training-curve plot each fail it."""
    import torch

    from movielens_assets.checks.ranking import finite_parameters_and_training_log
    from movielens_assets.resources import DataLake

    settings, _ = ranker
    copy = DataLake(root=str(tmp_path / "lake"))
    models = copy.models_dir / "ranking" / "last_n"
    shutil.copytree(settings.data_dir / "models" / "ranking" / "last_n", models)
    good = finite_parameters_and_training_log(copy)
    assert good.passed and good.metadata["models"].value == 3 and good.metadata["parameters"].value > 0

    state = torch.load(models / "unified_ranker" / "model.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name].view(-1)[0] = float("nan")
    torch.save(state, models / "unified_ranker" / "model.pt")
    result = finite_parameters_and_training_log(copy)
    assert not result.passed and result.description == f"unified_ranker last_n: 1 non-finite weights in {name}"

    shutil.copytree(settings.data_dir / "models" / "ranking" / "last_n" / "unified_ranker", models / "unified_ranker",
                    dirs_exist_ok=True)
    meta_path = models / "ablations" / "no_recall_features" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["training_log"]["epochs"] = []
    meta_path.write_text(json.dumps(meta))
    result = finite_parameters_and_training_log(copy)
    assert not result.passed
    assert result.description == "no_recall_features last_n: empty training log (meta.json has no epoch)"

    shutil.copytree(settings.data_dir / "models" / "ranking" / "last_n", models, dirs_exist_ok=True)
    (models / "unified_ranker" / "training_curve.png").unlink()
    result = finite_parameters_and_training_log(copy)
    assert not result.passed and "no training curve plot" in result.description


@pytest.mark.slow
def test_cli_trains_the_ranker_and_computes_its_metrics(lake, tmp_path):
    """`dagster asset materialize --select unified_ranker` then `... ranked_recommendations,ranking_metrics`,
    the real CLI (a run config through --config-json), on the built lake."""
    settings, _, _ = lake
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(settings.data_dir),
           "MOVIELENS_DATASET": "synthetic-tiny", "MOVIELENS_RANKING_SHARDS": "3", "MOVIELENS_DEVICE": "cpu"}
    base = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "movielens_assets.definitions"]
    config = {"ops": {"unified_ranker": {"config": {**TINY_RANKER, "ablations": []}}}}
    train = subprocess.run([*base, "--select", "unified_ranker", "--config-json", json.dumps(config)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert "checkpoint_reproduces_validation_scores" in train.stdout + train.stderr
    metrics = subprocess.run([*base, "--select", "ranked_recommendations,ranking_metrics"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert metrics.returncode == 0, metrics.stdout[-3000:] + metrics.stderr[-3000:]
    report = json.loads((settings.data_dir / "metrics" / "ranking.json").read_text())
    assert report["ablations"] == {} and report["users"] > 0
