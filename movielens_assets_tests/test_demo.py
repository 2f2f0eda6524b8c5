"""`python -m movielens_assets.demo`: `--select` takes the selection syntax of `dagster asset materialize --select`;
`--config` (a subprocess, as `make demo` runs it) reaches the selected assets' ops, and only those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from movielens_assets.definitions import defs
from movielens_assets.demo import resolve_selection


def test_demo_selection_is_comma_separated_like_the_cli():
    graph = defs.resolve_asset_graph()
    ingest, tmdb = resolve_selection("group:ingest", graph), resolve_selection("group:tmdb", graph)
    assert dg.AssetKey("ratings") in ingest and dg.AssetKey("tmdb_movie") in tmdb
    assert resolve_selection("group:ingest,group:tmdb", graph) == ingest | tmdb
    assert resolve_selection("group:ingest or group:tmdb", graph) == ingest | tmdb  # the new syntax
    assert resolve_selection("ratings*", graph) >= {dg.AssetKey("ranking_samples"), dg.AssetKey("splits")}
    assert resolve_selection(None, graph) == set(graph.get_all_asset_keys())


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(tmp_path / "lake"),
           "MOVIELENS_DATASET": "synthetic-tiny"}
    return subprocess.run([sys.executable, "-m", "movielens_assets.demo", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_config_of_a_selected_asset_is_applied_and_others_ignored(tmp_path):
    config = {"movielens_raw": {}, "popularity_recall": {"config": {"not_a_field": 1}}}  # not selected: ignored
    out = _demo(tmp_path, "--select", "movielens_raw", "--config", json.dumps(config))
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stderr[-3000:]
    assert any((tmp_path / "lake" / "raw").rglob("ratings.csv"))


@pytest.mark.slow
def test_an_invalid_config_of_a_selected_asset_fails_naming_the_field(tmp_path):
    out = _demo(tmp_path, "--select", "group:ingest,key:splits,key:popularity_recall",
                "--config", json.dumps({"popularity_recall": {"config": {"not_a_field": 1}}}))
    assert out.returncode != 0 and "not_a_field" in out.stderr
