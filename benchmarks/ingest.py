"""Ingest benchmark: our CSV -> Parquet path (validation included) vs two baselines, same files, same run.

    .venv/bin/python benchmarks/ingest.py                      # 1m, 10m, 32m
    .venv/bin/python benchmarks/ingest.py --sizes 1m 10m --repeat 3

Baselines:
- `duckdb-copy`: a bare DuckDB `COPY (SELECT … ORDER BY userId, timestamp) TO parquet` with the same types
  (the practical limit on this machine: no header check, no validation);
- `pandas`: `pd.read_csv` + `DataFrame.to_parquet` (the straightforward path; unsorted, unvalidated).

Each method runs in a fresh subprocess that reports its own wall time and peak RSS (ru_maxrss), so
memory figures do not bleed into each other. The synthetic CSVs are generated once into --cache-dir
(time and peak memory of the generation are reported too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("ours", "duckdb-copy", "pandas")


def _child(method: str, csv_dir: Path, out: Path) -> dict:
    start = time.perf_counter()
    csv = csv_dir / "ratings.csv"
    if method == "ours":
        from movielens_assets.core.data import duck, ingest

        # the same configuration as the `ratings` asset (DataLake.duckdb with the ingest memory bound)
        con = duck.connect(memory_limit=ingest.DEFAULT_MEMORY_LIMIT, temp_dir=out.parent / "spill")
        ingest.ingest_csv(con, ingest.RATINGS, csv_dir, out, dataset="bench")
    elif method == "duckdb-copy":
        import duckdb

        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT userId::INTEGER AS user_id, movieId::INTEGER AS movie_id, rating::FLOAT AS rating, "
            f"make_timestamp(timestamp * 1000000) AS timestamp FROM read_csv('{csv}', header = true, "
            f"auto_detect = false, columns = {{'userId': 'INTEGER', 'movieId': 'INTEGER', 'rating': 'DOUBLE', "
            f"'timestamp': 'BIGINT'}}) ORDER BY user_id, timestamp) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
        )
    elif method == "pandas":
        import pandas as pd

        df = pd.read_csv(csv)  # the straightforward path: default dtypes
        df.to_parquet(out, index=False)
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds (user + sys, all threads, interpreter start included) are far less sensitive than
    # wall time to other load on the machine; both are reported.
    return {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _generate(size: str, cache: Path) -> dict:
    from movielens_assets.core.data.synthetic import generate_movielens, parse_synthetic_name

    start = time.perf_counter()
    out = cache / f"synthetic-{size}"
    stats = generate_movielens(parse_synthetic_name(f"synthetic-{size}"), out, seed=42, tmdb_payloads=False,
                               progress=lambda line: print(f"    {line}", file=sys.stderr))
    return {
        "dir": str(out),
        "seconds": time.perf_counter() - start,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ratings": stats.get("n_ratings") or stats.get("ratings"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "10m", "32m"])
    parser.add_argument("--repeat", type=int, default=1,
                        help="interleaved rounds (best time, max memory and the median paired ratio reported)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / ".bench")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "CSV_DIR", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, csv_dir, out = args.child
        print(json.dumps(_child(method, Path(csv_dir), Path(out))))
        return
    if args.generate:
        print(json.dumps(_generate(args.generate, args.cache_dir)))
        return

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        print(f"== synthetic-{size}: generating (cached) ...", flush=True)
        gen = _run_child(["--generate", size, "--cache-dir", str(args.cache_dir)])
        csv_mb = (Path(gen["dir"]) / "ratings.csv").stat().st_size / 2**20
        print(f"   generation: {gen['seconds']:.1f}s, peak {gen['peak_mb']:.0f} MB (0 s when cached); "
              f"ratings.csv {csv_mb:.0f} MB", flush=True)
        # Interleaved rounds (ours, duckdb-copy, pandas, ours, ...): drift of a shared machine hits every
        # method alike; each round also gives a PAIRED ours / duckdb-copy ratio (median reported).
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeat):
            for method in METHODS:
                out = args.cache_dir / "out" / f"{size}-{method}.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                runs[method].append(_run_child(["--child", method, gen["dir"], str(out)]))
                out.unlink(missing_ok=True)
        result = {m: {"seconds": min(r["seconds"] for r in rs), "cpu_s": min(r["cpu_s"] for r in rs),
                      "peak_mb": max(r["peak_mb"] for r in rs)} for m, rs in runs.items()}
        paired = sorted(o["seconds"] / d["seconds"] for o, d in zip(runs["ours"], runs["duckdb-copy"], strict=True))
        result["paired_median"] = paired[len(paired) // 2] if len(paired) % 2 else \
            (paired[len(paired) // 2 - 1] + paired[len(paired) // 2]) / 2
        for method in METHODS:
            best = result[method]
            rounds = ", ".join(f"{r['seconds']:.2f}" for r in runs[method])
            print(f"   {method:<12} {best['seconds']:7.2f} s wall {best['cpu_s']:7.2f} s cpu  "
                  f"peak {best['peak_mb']:7.0f} MB"
                  f"  (rounds: {rounds} s)", flush=True)
        print(f"   paired ours / duckdb-copy wall per round: {', '.join(f'{x:.2f}' for x in paired)} "
              f"(median {result['paired_median']:.2f}x)", flush=True)
        rows.append((size, gen, result))

    print("\n| size | ours wall s / cpu s / MB | duckdb-copy wall s / cpu s / MB | pandas wall s / cpu s / MB "
          "| wall vs duckdb-copy (best) | paired wall ratio (median) | cpu vs duckdb-copy | memory vs pandas |")
    print("|---|---|---|---|---|---|---|---|")
    for size, _gen, r in rows:
        o, d, p = r["ours"], r["duckdb-copy"], r["pandas"]
        cell = lambda r: f"{r['seconds']:.2f} / {r['cpu_s']:.2f} / {r['peak_mb']:.0f}"  # noqa: E731
        print(
            f"| {size} | {cell(o)} | {cell(d)} | {cell(p)} | {o['seconds'] / d['seconds']:.2f}x | "
            f"{r['paired_median']:.2f}x | "
            f"{o['cpu_s'] / d['cpu_s']:.2f}x | {o['peak_mb'] / p['peak_mb']:.2f}x |"
        )
    print(f"\nmachine: {os.cpu_count()} cores; command: python benchmarks/ingest.py --sizes {' '.join(args.sizes)}")


if __name__ == "__main__":
    main()
