"""`ratings` + `movies` through the real entry point (the dagster CLI, with their checks), two checkouts A/B.

    .venv/bin/python benchmarks/ingest_cli.py --data /tmp/d32 --before /tmp/wt-before --after . --rounds 2

What a user pays for the README's one-asset example at scale: `dagster asset materialize -m
movielens_assets.definitions --select 'ratings,movies'` on a data directory whose raw CSVs exist (generate them
once, e.g. `MOVIELENS_DATASET=synthetic-32m MOVIELENS_DATA_DIR=/tmp/d32 dagster asset materialize -m
movielens_assets.definitions --select movielens_raw`). Each checkout runs in its own process with
`PYTHONPATH=<checkout>` (the same virtualenv), a fresh DAGSTER_HOME, the same `--dataset`; the rounds alternate
before / after so that a change of the machine's speed hits both. Reported per run: wall seconds of the
whole command, the peak RSS of its largest process (the step subprocesses included: RUSAGE_CHILDREN), and the
seconds of every step from the run's log ("Finished execution of step ... in ..."): the two assets and the
separate asset-check steps. Prints the median of each and after/before ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP = re.compile(r'Finished execution of step "([^"]+)" in ([0-9.]+)(ms|s|m)')


def _seconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit == "ms" else float(value) * (60 if unit == "m" else 1)


def run(checkout: Path, data: Path, dataset: str, select: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "MOVIELENS_DATA_DIR": str(data), "MOVIELENS_DATASET": dataset}
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text((checkout / "config" / "dagster.yaml").read_text())
        env["DAGSTER_HOME"] = home
        cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
               "movielens_assets.definitions", "--select", select]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=checkout, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"{checkout}: the command failed:\n{proc.stderr[-3000:]}")
    steps: dict[str, float] = {}
    for name, value, unit in STEP.findall(proc.stderr + proc.stdout):
        steps[name] = steps.get(name, 0.0) + _seconds(value, unit)
    # ru_maxrss of the children is a running maximum over every child so far: exact only when it grows
    return {"wall_s": wall, "peak_mb": peak / 1024 if peak > before else float("nan"), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data directory holding raw/<dataset>")
    parser.add_argument("--dataset", default="synthetic-32m")
    parser.add_argument("--before", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--after", type=Path, default=Path("."), help="checkout B (ours)")
    parser.add_argument("--select", default="ratings,movies")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"before": [], "after": []}
    # each measured in a fresh interpreter so that ru_maxrss of the children starts from zero
    for r in range(args.rounds):
        for label in ("before", "after"):
            checkout = getattr(args, label).resolve()
            out = subprocess.run([sys.executable, __file__, "--child", label, "--data", str(args.data),
                                  "--dataset", args.dataset, "--before", str(args.before), "--after", str(checkout),
                                  "--select", args.select], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(out.stderr[-3000:])
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[label].append(res)
            print(f"round {r + 1} {label:6s}: {res['wall_s']:6.1f} s, peak {res['peak_mb']:,.0f} MB, steps "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(res["steps"].items())), flush=True)
    print(f"\nmedian of {args.rounds} rounds, `dagster asset materialize --select '{args.select}'` on {args.dataset} "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end)\n")
    print("| | before | after | after / before |\n|---|---|---|---|")
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("wall_s", "peak_mb")} for k, v in results.items()}
    for key, unit in (("wall_s", "s"), ("peak_mb", "MB")):
        b, a = med["before"][key], med["after"][key]
        print(f"| {key.rsplit('_', 1)[0]} ({unit}) | {b:,.1f} | {a:,.1f} | {a / b:.2f} |")
    names = sorted({n for v in results.values() for x in v for n in x["steps"]})
    for n in names:
        b = statistics.median(x["steps"].get(n, 0.0) for x in results["before"])
        a = statistics.median(x["steps"].get(n, 0.0) for x in results["after"])
        print(f"| step `{n}` (s) | {b:.1f} | {a:.1f} | {'-' if not b else f'{a / b:.2f}'} |")


if __name__ == "__main__":
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        label = sys.argv[i + 1]
        argv = sys.argv[1:i] + sys.argv[i + 2:]
        p = argparse.ArgumentParser()
        for flag in ("--data", "--dataset", "--before", "--after", "--select"):
            p.add_argument(flag)
        a = p.parse_args(argv)
        checkout = Path(a.before if label == "before" else a.after).resolve()
        print(json.dumps(run(checkout, Path(a.data), a.dataset, a.select)))
    else:
        main()
