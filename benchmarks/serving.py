"""Serving latency and throughput, on a materialized lake (docs/BENCHMARKS.md, "Serving").

    .venv/bin/python benchmarks/serving.py                         # the lake of MOVIELENS_DATA_DIR (default data/)
    .venv/bin/python benchmarks/serving.py --data-dir /lakes/1m --seconds 10

1. In process: `Recommender.recommend` for random evaluated users (p50 / p99), against the baseline a first
   version would write — one DuckDB query per request over `ranked.parquet` and `ratings.parquet` — and the ratio.
2. Over HTTP: `movielens-rec serve` started as users start it (its own process, 127.0.0.1), then 1, 8 and 32
   concurrent clients (one aiohttp client process, keep-alive connections) sending `GET /recommend?user=…&k=10`
   for random evaluated users for `--seconds` each (and `/similar` at 8 clients): p50 / p99 per request and
   requests/s, plus the server's resident memory after loading and after the load. Targets: p99 < 20 ms at 8
   clients, >= 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _pct(ms: list[float] | np.ndarray) -> tuple[float, float]:
    a = np.asarray(ms, dtype=np.float64)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def in_process(data_dir: Path, users: np.ndarray, n: int) -> dict:
    import duckdb

    from movielens_assets.core.serving.recommender import Recommender

    start = time.perf_counter()
    rec = Recommender.load(data_dir)
    load_s = time.perf_counter() - start
    sample = users[: n]
    ours = []
    for u in sample:
        t = time.perf_counter()
        rec.recommend(int(u), 10)
        ours.append((time.perf_counter() - t) * 1e3)
    ranked = rec.paths.ranked
    ratings = data_dir / "processed" / "ratings.parquet"
    con = duckdb.connect()
    base = []
    for u in sample[: max(n // 10, 50)]:  # the baseline is slow: a tenth of the users
        t = time.perf_counter()
        con.execute(f"""SELECT r.movie_id, m.title, r.p_watch, r.channels FROM '{ranked}' r
                        JOIN '{rec.paths.movies}' m USING (movie_id)
                        WHERE r.user_id = ? AND r.movie_id NOT IN (SELECT movie_id FROM '{ratings}' WHERE user_id = ?)
                        ORDER BY r.rank LIMIT 10""", [int(u), int(u)]).fetchall()
        base.append((time.perf_counter() - t) * 1e3)
    (o50, o99), (b50, b99) = _pct(ours), _pct(base)
    return {"load_s": round(load_s, 2), "ours_p50_ms": round(o50, 3), "ours_p99_ms": round(o99, 3),
            "baseline_p50_ms": round(b50, 2), "baseline_p99_ms": round(b99, 2), "ratio_p50": round(b50 / o50, 1)}


async def _load(url: str, paths: list[str], clients: int, seconds: float) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            t = time.perf_counter()
            async with session.get(url + paths[i % len(paths)]) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - t) * 1e3)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        for path in paths[:clients]:  # warm-up: open the connections
            async with session.get(url + path) as resp:
                await resp.read()
        began = time.perf_counter()
        await asyncio.gather(*(client(session, c) for c in range(clients)))
        elapsed = time.perf_counter() - began
    p50, p99 = _pct(latencies)
    return {"clients": clients, "requests": len(latencies), "errors": errors, "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2), "requests_per_s": round(len(latencies) / elapsed, 1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def over_http(data_dir: Path, users: np.ndarray, movies: np.ndarray, clients: list[int], seconds: float) -> dict:
    import urllib.request

    port = _free_port()
    env = {**os.environ, "MOVIELENS_DATA_DIR": str(data_dir)}
    env.pop("MOVIELENS_DATASET", None)  # the lake decides; the benchmark does not re-check the dataset name
    cli = str(Path(sys.executable).parent / "movielens-rec")
    proc = subprocess.Popen([cli, "--data-dir", str(data_dir), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
                    health = json.loads(resp.read())
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - started > 300:
                    raise SystemExit("movielens-rec serve did not start") from None
                time.sleep(0.2)
        ready_s = time.perf_counter() - started
        rss_loaded = _rss_mb(proc.pid)
        rec_paths = [f"/recommend?user={int(u)}&k=10" for u in users]
        rows = [{"endpoint": "/recommend", **asyncio.run(_load(url, rec_paths, c, seconds))} for c in clients]
        sim_paths = [f"/similar?movie={int(m)}&k=10" for m in movies]
        rows.append({"endpoint": "/similar", **asyncio.run(_load(url, sim_paths, 8, seconds))})
        return {"ready_s": round(ready_s, 2), "rss_loaded_mb": rss_loaded, "rss_after_mb": _rss_mb(proc.pid),
                "dataset": health["dataset"], "users_with_lists": health["users_with_lists"], "rows": rows}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MOVIELENS_DATA_DIR", ROOT / "data")))
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--users", type=int, default=2000, help="distinct users requested (random, evaluated)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    import duckdb

    data_dir = args.data_dir.resolve()
    ranked = data_dir / "ranking" / "recommendations" / "last_n" / "ranked.parquet"
    if not ranked.is_file():
        raise SystemExit(f"{ranked} does not exist: run `make demo` (or materialize ranked_recommendations) first")
    rng = np.random.default_rng(0)
    users = duckdb.execute(f"SELECT DISTINCT user_id FROM '{ranked}'").fetchnumpy()["user_id"]
    users = rng.permutation(users)[: args.users]
    movies = rng.permutation(np.load(data_dir / "recall" / "splits" / "last_n" / "ids" / "items.npy"))[: args.users]
    result = {"data_dir": str(data_dir), "cpus": os.cpu_count(),
              "in_process": in_process(data_dir, users, min(args.users, 2000)),
              "http": over_http(data_dir, users, movies, [int(c) for c in args.clients.split(",")], args.seconds)}
    ip, http = result["in_process"], result["http"]
    print(f"# serving benchmark — {http['dataset']} ({http['users_with_lists']:,} users with lists), "
          f"{os.cpu_count()} CPUs")
    print(f"in process: load {ip['load_s']}s; recommend p50 {ip['ours_p50_ms']} ms / p99 {ip['ours_p99_ms']} ms vs "
          f"DuckDB per request p50 {ip['baseline_p50_ms']} ms / p99 {ip['baseline_p99_ms']} ms "
          f"-> {ip['ratio_p50']}x faster")
    print(f"server: ready in {http['ready_s']}s, RSS {http['rss_loaded_mb']} MB loaded, "
          f"{http['rss_after_mb']} MB after the load\n")
    print("| endpoint | clients | requests | errors | p50 ms | p99 ms | requests/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in http["rows"]:
        print(f"| {r['endpoint']} | {r['clients']} | {r['requests']:,} | {r['errors']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['requests_per_s']:,.0f} |")
    at8 = next(r for r in http["rows"] if r["endpoint"] == "/recommend" and r["clients"] == 8)
    met = {True: "met", False: "NOT met"}
    print(f"\ntargets at 8 clients: p99 {at8['p99_ms']} ms (< 20: {met[at8['p99_ms'] < 20]}), "
          f"{at8['requests_per_s']:,.0f} requests/s (>= 1,000: {met[at8['requests_per_s'] >= 1000]})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
