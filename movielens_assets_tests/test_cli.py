"""The real CLI in a subprocess: `dagster asset materialize -m movielens_assets.definitions --select ...`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _env(tmp_path: Path, dataset: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MOVIELENS_DATA_DIR": str(tmp_path / "lake"),
        "MOVIELENS_DATASET": dataset,
    }


def test_cli_materializes_ingest_group_on_synthetic_data(tmp_path):
    env = _env(tmp_path, "synthetic-tiny")
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "movielens_assets.definitions",
           "--select", "group:ingest"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lake = tmp_path / "lake"
    for table in ("ratings", "movies", "tags", "links"):
        assert (lake / "processed" / f"{table}.parquet").stat().st_size > 0
    assert (lake / "reports" / "EDA_REPORT.md").read_text().startswith("# EDA report — `synthetic-tiny`")
    # The run was recorded in the persistent instance (DAGSTER_HOME), not a temporary one.
    assert any((tmp_path / "dagster_home").rglob("*.db"))


def test_cli_validate_definitions(tmp_path):
    proc = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "movielens_assets.definitions"],
                          env=_env(tmp_path, "synthetic-tiny"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("tool", ["dagster", "dg"])
def test_dev_server_serves_the_code_location(tmp_path, tool):
    """`dagster dev` / `dg dev` load the `movielens` code location from pyproject/workspace and serve GraphQL."""
    import json
    import signal
    import time
    import urllib.request

    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    args = (["dev", "-h", "127.0.0.1", "-p", str(port)] if tool == "dagster"
            else ["dev", "--host", "127.0.0.1", "--port", str(port)])
    proc = subprocess.Popen([str(BIN / tool), *args], cwd=root, env=_env(tmp_path, "synthetic-tiny"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    query = json.dumps({"query": "{ assetNodes { assetKey { path } groupName } "
                                 "workspaceOrError { ... on Workspace { locationEntries { name } } } }"}).encode()
    try:
        deadline = time.monotonic() + 90
        data = None
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                             headers={"Content-Type": "application/json"})
                data = json.loads(urllib.request.urlopen(req, timeout=5).read())["data"]
                if data["assetNodes"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert data and data["assetNodes"], "the dev server did not serve the asset graph within 90 s"
        keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert {"ratings", "movies", "eda_report"} <= keys
        assert [e["name"] for e in data["workspaceOrError"]["locationEntries"]] == ["movielens"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
