"""A record of what `make demo` produced, and a comparison of a later run against it (behaviour unchanged?).

    .venv/bin/python benchmarks/demo_record.py record  --data data --out docs/records/demo-synthetic-small.json
    .venv/bin/python benchmarks/demo_record.py compare --data data --record docs/records/demo-synthetic-small.json

RECORD: every Parquet file under the data directory (relative path) with its row count, its columns and a
content hash of its rows that does not depend on their order (the sum modulo 2^64 of DuckDB's `hash` of each
whole row: equal for the same multiset of rows, so a refactor that only reorders rows still compares equal —
the sorted-rows hash the code-health issue asks for, without sorting 10M-row files), plus the float columns'
sums (to tell "numerically equal" from "different" when a hash changes); files named per run (the embedding
store's `chunk-<time>-<uuid>.parquet`) are combined per folder; and `metrics/recall.json` /
`metrics/ranking.json` as they are.

COMPARE: exits 1 and lists every difference — a file missing or added, a row count, a column set, a hash
(with the largest relative difference of the float sums: below --rtol the file is reported as equal up to
floating point, e.g. a different summation order, and does not fail unless --exact), and every metric whose
value differs by more than --rtol. Files under `tmdb/landing/` (API responses with fetch times) and the Dagster
storage are not recorded; columns holding the run's time (`VOLATILE_COLUMNS`: `fetched_at`) are left out of
the hash.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

SKIP_PARTS = ("tmdb/landing/", ".dagster", "/_tmp", ".tmp")
VOLATILE_COLUMNS = ("fetched_at",)
"""Columns holding the time of the run (the TMDb tables' fetch time: the synthetic payloads are seeded at
run time), left out of the content hash."""
METRICS = ("metrics/recall.json", "metrics/ranking.json")


def _files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*.parquet")
                  if not any(s in p.relative_to(data).as_posix() for s in SKIP_PARTS))


def describe(path: Path) -> dict:
    import duckdb
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    floats = [f.name for f in schema if str(f.type) in ("float", "double", "halffloat")]
    con = duckdb.connect()
    volatile = [c for c in VOLATILE_COLUMNS if c in schema.names]
    exclude = f" EXCLUDE ({', '.join(volatile)})" if volatile else ""
    src = f"(SELECT *{exclude} FROM read_parquet('{path.as_posix()}'))"
    sums = ", ".join(f'sum("{c}")::DOUBLE' for c in floats)
    row = con.execute(f"SELECT count(*), (sum(hash(t)::HUGEINT) % 18446744073709551616)::VARCHAR"
                      f"{', ' + sums if sums else ''} FROM {src} t").fetchone()
    con.close()
    sums_by_column = {c: (None if v is None or math.isnan(v) else v) for c, v in zip(floats, row[2:], strict=True)}
    return {"rows": int(row[0]), "columns": schema.names, "hash": row[1], "float_sums": sums_by_column}


def _key(rel: str) -> str:
    """Files named per run (the embedding store's `chunk-<time>-<uuid>.parquet`) are keyed by their folder."""
    folder, _, name = rel.rpartition("/")
    return f"{folder}/chunk-*.parquet" if name.startswith("chunk-") else rel


def _combine(a: dict, b: dict) -> dict:
    """Two files' descriptions as one table's: the row hash is a sum, so it adds up across files."""
    if a["columns"] != b["columns"]:
        raise ValueError(f"chunk files with different columns: {a['columns']} vs {b['columns']}")
    sums = {c: None if a["float_sums"][c] is None or b["float_sums"][c] is None
            else a["float_sums"][c] + b["float_sums"][c] for c in a["float_sums"]}
    return {"rows": a["rows"] + b["rows"], "columns": a["columns"],
            "hash": str((int(a["hash"]) + int(b["hash"])) % 2**64), "float_sums": sums}


def record(data: Path) -> dict:
    out: dict = {"data": str(data), "recorded": time.strftime("%Y-%m-%d %H:%M:%S"), "files": {}, "metrics": {}}
    for p in _files(data):
        key, d = _key(p.relative_to(data).as_posix()), describe(p)
        out["files"][key] = _combine(out["files"][key], d) if key in out["files"] else d
    for m in METRICS:
        if (data / m).is_file():
            out["metrics"][m] = json.loads((data / m).read_text())
    return out


def _numbers(obj, prefix: str = ""):
    """(dotted key, number) for every number in a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{prefix}[{i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield prefix, float(obj)


def _rel(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def compare(old: dict, new: dict, rtol: float, exact: bool) -> list[str]:
    """Differences between two records (empty: the same outputs)."""
    problems: list[str] = []
    for name in sorted(set(old["files"]) | set(new["files"])):
        a, b = old["files"].get(name), new["files"].get(name)
        if a is None or b is None:
            problems.append(f"{name}: {'added' if a is None else 'missing'}")
            continue
        if a["rows"] != b["rows"] or a["columns"] != b["columns"]:
            problems.append(f"{name}: rows {a['rows']} -> {b['rows']}, columns {a['columns']} -> {b['columns']}")
        elif a["hash"] != b["hash"]:
            fa, fb = a["float_sums"], b["float_sums"]
            worst = max((_rel(fa.get(c), fb.get(c)) for c in fa), default=math.inf)
            if exact or not worst <= rtol:
                problems.append(f"{name}: content differs (largest relative change of a float sum {worst:.2e})")
            else:
                print(f"  {name}: equal up to floating point (hash differs, float sums within {worst:.1e})")
    for m in sorted(set(old["metrics"]) | set(new["metrics"])):
        a, b = dict(_numbers(old["metrics"].get(m, {}))), dict(_numbers(new["metrics"].get(m, {})))
        for key in sorted(set(a) | set(b)):
            if _rel(a.get(key), b.get(key)) > rtol:
                problems.append(f"{m}: {key} {a.get(key)} -> {b.get(key)}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--data", type=Path, default=Path("data"))
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("--data", type=Path, default=Path("data"))
    c.add_argument("--record", type=Path, required=True)
    c.add_argument("--rtol", type=float, default=1e-6)
    c.add_argument("--exact", action="store_true", help="any hash change fails, even within --rtol")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no data directory (run `make demo` first)")
    t0 = time.perf_counter()
    now = record(args.data)
    if args.cmd == "record":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"{len(now['files'])} Parquet files, {len(now['metrics'])} metrics files -> {args.out} "
              f"({time.perf_counter() - t0:.0f}s)")
        return
    problems = compare(json.loads(args.record.read_text()), now, args.rtol, args.exact)
    for p in problems:
        print(f"DIFFERENT {p}")
    print(f"{len(now['files'])} files compared in {time.perf_counter() - t0:.0f}s: "
          f"{'the same outputs' if not problems else f'{len(problems)} difference(s)'}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
