"""The `movielens-rec` console script in a subprocess, reading the lake from `MOVIELENS_DATA_DIR` as a user runs it:
recommend / similar / history tables, exit codes and messages on bad input and missing artifacts, and `serve`
answering HTTP until it is stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "movielens-rec")


def _env(lake: Path, dataset: str = "synthetic-tiny") -> dict[str, str]:
    return {**os.environ, "MOVIELENS_DATA_DIR": str(lake), "MOVIELENS_DATASET": dataset}


def _cli(lake: Path, *args: str, dataset: str = "synthetic-tiny") -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=_env(lake, dataset), capture_output=True, text=True, timeout=120)


def test_recommend_similar_history_print_tables(served_lake):
    lake = served_lake.data_dir
    (user,) = duckdb.execute(f"SELECT min(user_id) FROM '{lake}/ranking/recommendations/last_n/ranked.parquet'"
                         ).fetchone()
    out = _cli(lake, "recommend", "--user", str(user), "-k", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"Top 5 for user {user} — the UnifiedRanker's list (score = p(watch)")
    assert lines[1].split() == ["#", "movie", "title", "genres", "score", "proposed", "by"] and len(lines) == 8
    first_title = duckdb.execute(f"SELECT title FROM '{lake}/processed/movies.parquet' WHERE movie_id = "
                             f"{int(lines[3].split()[1])}").fetchone()[0]
    assert first_title[:20] in lines[3]

    as_json = json.loads(_cli(lake, "recommend", "--user", str(user), "-k", "5", "--json").stdout)
    assert [i["movie_id"] for i in as_json["items"]] == [int(line.split()[1]) for line in lines[3:]]

    movie = as_json["items"][0]["movie_id"]
    sim = _cli(lake, "similar", "--movie", as_json["items"][0]["title"].upper(), "-k", "3")
    assert sim.returncode == 0, sim.stderr
    assert sim.stdout.startswith(f"Movies similar to {as_json['items'][0]['title']} (movie {movie};")
    hist = _cli(lake, "history", "--user", str(user))
    assert hist.returncode == 0 and hist.stdout.startswith(f"User {user}: ")


def test_bad_input_and_missing_artifacts_exit_with_a_message(served_lake, tmp_path):
    lake = served_lake.data_dir
    bad = _cli(lake, "recommend", "--user", "-5")
    assert bad.returncode == 2 and "user must be a positive integer id" in bad.stderr and not bad.stdout
    unknown = _cli(lake, "similar", "--movie", "zzzz no such film")
    assert unknown.returncode == 2 and "no movie title matches 'zzzz no such film'" in unknown.stderr
    k = _cli(lake, "similar", "--movie", "1", "-k", "0")
    assert k.returncode == 2 and "k must be an integer in 1..200" in k.stderr
    missing = _cli(tmp_path / "fresh", "recommend", "--user", "1")
    assert missing.returncode == 3 and "materialize `movies`" in missing.stderr
    foreign = _cli(lake, "recommend", "--user", "1", dataset="synthetic-1m")
    assert foreign.returncode == 3 and "computed on dataset 'synthetic-tiny'" in foreign.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr + missing.stderr + foreign.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_answers_http_on_localhost_until_stopped(served_lake, tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([CLI, "serve", "--port", str(port)], env=_env(served_lake.data_dir), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert status == 200 and health["dataset"] == "synthetic-tiny"
        assert _get(f"http://127.0.0.1:{port}/recommend?user=-1")[0] == 400
        status, body = _get(f"http://127.0.0.1:{port}/recommend?user=1&k=3")
        assert status == 200 and len(body["items"]) == 3
        assert f"on http://127.0.0.1:{port}/" in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
