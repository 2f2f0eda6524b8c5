"""Benchmark: the async TMDb client vs a naive 50-thread crawler, against the same local fake TMDb.

    .venv/bin/python benchmarks/tmdb.py                 # 3,000 movies, 50 req/s limit (~1.5 min)
    .venv/bin/python benchmarks/tmdb.py --movies 500    # quicker

The fake server (127.0.0.1 only) answers with 50-100 ms latency, injects 5 % faults (502/503/504,
CloudFront HTML 502, connection resets, malformed JSON, 1 s stalls) deterministically per id and
attempt, and enforces the configured limit with a token bucket (429 + Retry-After) like TMDb's CDN.

1. `TMDbClient` configured at the limit: shared paced limiter, 20 connections, retries + backoff.
2. A naive crawler: 50 threads, one `requests.get` per movie (api_key in the URL), no pacing, no
   retry — what the earlier script-based version did, minus its unbounded 429 recursion.

Reported per crawler: requests, elapsed, achieved req/s (also as a share of the limit), 429s,
movies fetched, lost movies, and the most requests the server saw in any 1 s window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from movielens_assets.core.tmdb.client import TMDbClient, TMDbConfig  # noqa: E402
from movielens_assets.core.tmdb.records import FetchResult  # noqa: E402
from movielens_assets_tests.servers.tmdb_fake import FakeTMDb, make_movies  # noqa: E402

API_KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.YmVuY2htYXJr.c2ln"
FAULTS = ("502", "503", "504", "502html", "reset", "malformed", "slow")


def crawl_with_client(srv: FakeTMDb, ids: list[int], rate: float) -> dict:
    cfg = TMDbConfig(
        base_url=srv.base_url,
        read_access_token=TOKEN,
        rate_limit_per_s=rate,
        max_connections=20,
        timeout_s=5.0,
    )
    results: dict[int, FetchResult] = {}

    async def main():
        async with TMDbClient(cfg, log=lambda line: print("   ", line, flush=True), progress_every_s=15) as client:
            return await client.fetch_many(ids, lambda r: results.__setitem__(r.tmdb_id, r))

    stats = asyncio.run(main())
    ok = sum(1 for r in results.values() if r.outcome == "ok")
    return {
        "requests": stats.requests,
        "elapsed": stats.elapsed,
        "rate_limited": stats.rate_limited,
        "ok": ok,
        "lost": len(ids) - ok,
        "retries": stats.retries,
    }


def crawl_naively(srv: FakeTMDb, ids: list[int], threads: int = 50) -> dict:
    try:
        import requests

        def get(url: str, params: dict) -> tuple[int, bytes]:
            try:
                resp = requests.get(url, params=params, timeout=10)
                return resp.status_code, resp.content
            except requests.RequestException:
                return 0, b""
    except ImportError:  # pragma: no cover - requests is normally installed
        import urllib.error
        import urllib.parse
        import urllib.request

        def get(url: str, params: dict) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(url + "?" + urllib.parse.urlencode(params), timeout=10) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
            except OSError:
                return 0, b""

    def one(tmdb_id: int) -> tuple[int, bool]:
        params = {"api_key": API_KEY, "append_to_response": "credits,keywords,release_dates", "language": "en-US"}
        status, body = get(f"{srv.base_url}/movie/{tmdb_id}", params)
        if status != 200:
            return status, False
        try:
            return status, isinstance(json.loads(body), dict)
        except ValueError:
            return status, False

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(one, ids))
    elapsed = time.monotonic() - t0
    ok = sum(1 for _, good in outcomes if good)
    return {
        "requests": len(outcomes),
        "elapsed": elapsed,
        "rate_limited": sum(1 for status, _ in outcomes if status == 429),
        "ok": ok,
        "lost": len(ids) - ok,
        "retries": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movies", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=50.0, help="the server's limit and the client's configured rate")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()

    ids = list(range(1, args.movies + 1))
    movies = make_movies(ids)
    print(f"fake TMDb: {len(ids):,} movies, latency 50-100 ms, {args.fault_rate:.0%} faults {FAULTS}, "
          f"limit {args.rate:g} req/s (token bucket, burst {args.rate:g}, Retry-After: 1)")
    rows = []
    with FakeTMDb(movies=movies, token=TOKEN, api_key=API_KEY, latency_s=(0.05, 0.1), fault_rate=args.fault_rate,
                  fault_mix=FAULTS, slow_s=1.0, rate_limit_per_s=args.rate, retry_after=1, seed=42) as srv:
        print(f"\n[1/2] TMDbClient, configured at {args.rate:g} req/s, 20 connections")
        client = crawl_with_client(srv, ids, args.rate)
        client["max_1s"] = srv.max_in_window(1.0)
        rows.append(("TMDbClient (async, paced)", client))

        srv.reset_log()
        srv.set_rate_limit(args.rate)  # a fresh bucket for the second crawler
        time.sleep(1.0)
        print(f"\n[2/2] naive crawler: {args.threads} threads, requests.get, no pacing, no retry")
        naive = crawl_naively(srv, ids, args.threads)
        naive["max_1s"] = srv.max_in_window(1.0)
        rows.append((f"naive {args.threads}-thread", naive))

    header = f"{'crawler':<27}{'requests':>9}{'elapsed s':>11}{'req/s':>8}{'% limit':>9}{'max/1s':>8}" \
             f"{'429s':>7}{'retries':>9}{'fetched':>9}{'lost':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, r in rows:
        rate = r["requests"] / r["elapsed"]
        print(f"{name:<27}{r['requests']:>9,}{r['elapsed']:>11.1f}{rate:>8.1f}{rate / args.rate:>9.0%}{r['max_1s']:>8}"
              f"{r['rate_limited']:>7,}{r['retries']:>9,}{r['ok']:>9,}{r['lost']:>7,}")
    c, n = client, naive
    c_rate = c["requests"] / c["elapsed"]
    print(f"\nTMDbClient achieved {c_rate:.1f} req/s = {c_rate / args.rate:.1%} of the {args.rate:g} req/s limit, "
          f"lost {c['lost']} of {len(ids):,} movies, {c['rate_limited']} x 429.")
    print(f"naive crawler: {n['requests'] / n['elapsed']:.1f} req/s offered, {n['rate_limited']:,} x 429, "
          f"lost {n['lost']:,} of {len(ids):,} movies ({n['lost'] / len(ids):.1%}).")
    print(f"ratio achieved/limit: client {c_rate / args.rate:.3f}; movies complete: client {c['ok'] / len(ids):.1%} "
          f"vs naive {n['ok'] / len(ids):.1%}.")

if __name__ == "__main__":
    main()
