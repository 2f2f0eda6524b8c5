"""Fault tolerance of the ranking shards on a built synthetic-tiny lake: a materialization killed mid-shard, two
materializations of one shard at once, a full disk while a shard is written, a truncated shard or table read by a
downstream asset."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from movielens_assets_tests.helpers import FAST_TWO_TOWER, failure_messages, make_settings, materialize

KEYS = ("00", "01", "02")
UPSTREAM = ("group:ingest or group:tmdb or group:features or group:recall or key:user_sequences "
            "or key:item_profile or key:user_profile")


@pytest.fixture(scope="module")
def lake(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("reliability")
    settings = make_settings(tmp, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir), MOVIELENS_DEVICE="cpu",
                             MOVIELENS_RANKING_SHARDS="3")
    with dg.instance_for_test() as instance:
        up = materialize(settings, instance, UPSTREAM, {"ops": {"two_tower_recall": {"config": FAST_TWO_TOWER}}})
        assert up.success, failure_messages(up)
        for key in KEYS:
            result = materialize(settings, instance, "key:ranking_samples", partition_key=key)
            assert result.success, failure_messages(result)
    root = settings.data_dir / "ranking" / "samples" / "last_n"
    clean = {key: _sha(root / f"shard={key}" / "part-0.parquet") for key in KEYS}
    return settings, root, clean


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digests(root: Path) -> dict[str, str]:
    return {key: _sha(root / f"shard={key}" / "part-0.parquet") for key in KEYS
            if (root / f"shard={key}" / "part-0.parquet").is_file()}


def _cli(settings, home: Path, key: str) -> tuple[list[str], dict[str, str]]:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(settings.data_dir),
           "MOVIELENS_DATASET": "synthetic-tiny", "MOVIELENS_RANKING_SHARDS": "3"}
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "movielens_assets.definitions",
           "--select", "ranking_samples", "--partition", key]
    return cmd, env


def _assert_clean_tree(root: Path) -> None:
    assert sorted(p.name for p in root.iterdir()) == [f"shard={k}" for k in KEYS]  # no temporary directory
    for key in KEYS:
        assert [p.name for p in (root / f"shard={key}").iterdir()] == ["part-0.parquet"]  # no interleaved files


@pytest.mark.slow
def test_a_materialization_killed_mid_shard_leaves_the_old_shard_and_a_rerun_rebuilds_it(lake, tmp_path):
    settings, root, clean = lake
    before = _digests(root)
    cmd, env = _cli(settings, tmp_path / "home", "01")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline, seen = time.monotonic() + 300, None
        while time.monotonic() < deadline and proc.poll() is None:
            seen = next(iter(root.glob(".shard=01.tmp-*")), None)
            if seen is not None:
                break
            time.sleep(0.002)
        assert seen is not None, "the shard's temporary directory never appeared"
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: CLI and its step process
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert list(root.glob(".shard=01.tmp-*")), "killed before or after the write: no temporary directory left"
    after = _digests(root)
    assert after == before  # the published shard is the old one (never partial); the others untouched
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:ranking_samples", partition_key="01")
    assert result.success, failure_messages(result)
    assert _digests(root) == clean  # same rows as a clean build: no duplicate, no missing row
    _assert_clean_tree(root)  # the killed writer's temporary directory was removed by the rerun


@pytest.mark.slow
def test_two_materializations_of_one_shard_at_once(lake, tmp_path):
    settings, root, clean = lake
    cmd, env = _cli(settings, tmp_path / "home", "02")
    # the instance's sqlite files are created once first: two processes creating them at the same moment race in
    # Dagster's own schema migration, which is not what this test is about
    from dagster._core.instance.ref import InstanceRef

    dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "home"))).dispose()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outputs[0][-3000:]
    for code, out in zip(codes, outputs, strict=True):  # both finish, or one fails with a clear error
        assert code == 0 or "shard" in out, out[-3000:]
    assert _digests(root) == clean
    _assert_clean_tree(root)


def test_a_full_disk_while_a_shard_is_written_keeps_the_previous_shard(lake, monkeypatch):
    import pyarrow.parquet as pq

    settings, root, _ = lake
    before = _digests(root)
    real = pq.ParquetWriter.write_table

    def full(self, *args, **kwargs):
        real(self, *args, **kwargs)  # some bytes reach the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "key:ranking_samples", partition_key="00")
    monkeypatch.undo()
    assert not result.success
    message = " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
    assert "No space left on device" in message and str(root / "shard=00") in message, message[-2000:]
    assert _digests(root) == before
    _assert_clean_tree(root)


def test_a_truncated_shard_is_detected_by_its_reader_and_rebuilt_by_its_asset(lake):
    settings, root, clean = lake
    part = root / "shard=01" / "part-0.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "ranking_eda")
        assert not result.success
        message = " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
        assert str(part) in message, message[-2000:]
        rebuilt = materialize(settings, instance, "key:ranking_samples", partition_key="01")
    assert rebuilt.success, failure_messages(rebuilt)
    assert _digests(root) == clean


def test_a_truncated_ratings_table_is_detected_downstream_and_rebuilt_by_its_asset(lake):
    settings, _, _ = lake
    ratings = settings.data_dir / "processed" / "ratings.parquet"
    good = ratings.read_bytes()
    ratings.write_bytes(good[: len(good) // 2])
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "splits")
        assert not result.success
        message = " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
        assert str(ratings) in message, message[-2000:]
        rebuilt = materialize(settings, instance, "key:ratings or key:movies")
    assert rebuilt.success, failure_messages(rebuilt)
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert pq.read_table(ratings).equals(pq.read_table(pa.BufferReader(good)))
