"""`python -m movielens_assets.demo --config` (a subprocess, as `make demo` runs it): run config reaches the
selected assets' ops, and only those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(tmp_path / "lake"),
           "MOVIELENS_DATASET": "synthetic-tiny"}
    return subprocess.run([sys.executable, "-m", "movielens_assets.demo", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def test_config_of_a_selected_asset_is_applied_and_others_ignored(tmp_path):
    config = {"movielens_raw": {}, "popularity_recall": {"config": {"not_a_field": 1}}}  # not selected: ignored
    out = _demo(tmp_path, "--select", "movielens_raw", "--config", json.dumps(config))
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stderr[-3000:]
    assert any((tmp_path / "lake" / "raw").rglob("ratings.csv"))


def test_an_invalid_config_of_a_selected_asset_fails_naming_the_field(tmp_path):
    out = _demo(tmp_path, "--select", "group:ingest or key:splits or key:popularity_recall",
                "--config", json.dumps({"popularity_recall": {"config": {"not_a_field": 1}}}))
    assert out.returncode != 0 and "not_a_field" in out.stderr
