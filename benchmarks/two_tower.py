"""Two-tower TRAINING throughput: sparse embedding gradients + SparseAdam (ours) vs dense Adam (baseline).

    .venv/bin/python benchmarks/two_tower.py --sizes 1m 10m 32m
    .venv/bin/python benchmarks/two_tower.py --sizes 32m --examples 200000 --repeat 3

Uses the train split that `benchmarks/recall.py` prepares and caches (synthetic-<size>, protocol last_n,
under --cache-dir; prepared here too when missing). Each run trains `TwoTowerRecall` with the default
`TwoTowerConfig` on ALL users and items (full-size embedding tables: the point of the comparison) for one
epoch over a uniform sample of --examples training rows (`max_examples_per_epoch`), 1 torch thread, in a
fresh subprocess; it reports examples/s of the training loop (`training_log_["examples_per_s"]`, index
build excluded), the final loss and peak RSS. Rounds are interleaved (dense, sparse, dense, sparse, ...)
and the median of the paired sparse / dense speed ratios is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

METHODS = {"dense-adam": False, "sparse-adam": True}


def _child(cache: Path, size: str, sparse: bool, examples: int, device: str) -> dict:
    import resource

    from recall import _load  # the cached train split of benchmarks/recall.py

    from movielens_assets.core.recall.two_tower import TwoTowerConfig, TwoTowerRecall

    train, _ = _load(cache, size)
    cfg = TwoTowerConfig(epochs=1, max_examples_per_epoch=examples, sparse_embeddings=sparse)
    model = TwoTowerRecall(cfg, device=device).fit(train)
    log = model.training_log_
    return {"examples_per_s": log["examples_per_s"], "train_s": log["train_seconds"],
            "loss": log["loss_per_epoch"][-1], "device": log["device"], "users": train.n_users,
            "items": train.n_items, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "10m"])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / ".bench")
    parser.add_argument("--examples", type=int, default=50_000, help="training rows per run (one epoch)")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds per size")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        size, method = args.child
        print(json.dumps(_child(args.cache_dir, size, METHODS[method], args.examples, args.device)))
        return

    rows = []
    for size in args.sizes:
        from recall import _prepare, _work

        if not (_work(args.cache_dir, size) / "train.npz").exists():
            print(f"== {size}: preparing the train split (benchmarks/recall.py's cache) ...", flush=True)
            _prepare(size, args.cache_dir)
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeat):
            for method in METHODS:
                res = _run(["--child", size, method, "--cache-dir", str(args.cache_dir),
                            "--examples", str(args.examples), "--device", args.device])
                runs[method].append(res)
                print(f"   {size} {method:12s} {res['examples_per_s']:>9,.0f} examples/s  loss {res['loss']:.3f}  "
                      f"peak {res['peak_mb']:,.0f} MB  "
                      f"({res['users']:,} users, {res['items']:,} items, {res['device']})",
                      flush=True)
        paired = [s["examples_per_s"] / d["examples_per_s"]
                  for d, s in zip(runs["dense-adam"], runs["sparse-adam"], strict=True)]
        rows.append((size, runs, statistics.median(paired)))

    print("\n| size | dense Adam examples/s | sparse (ours) examples/s | speed-up (median paired) "
          "| loss dense / sparse |\n|---|---|---|---|---|")
    for size, runs, ratio in rows:
        d = statistics.median(r["examples_per_s"] for r in runs["dense-adam"])
        s = statistics.median(r["examples_per_s"] for r in runs["sparse-adam"])
        print(f"| {size} | {d:,.0f} | {s:,.0f} | {ratio:.1f}x | {runs['dense-adam'][-1]['loss']:.3f} / "
              f"{runs['sparse-adam'][-1]['loss']:.3f} |")
    print(f"\n{args.examples:,} examples, 1 epoch, default TwoTowerConfig, device {args.device}; "
          f"command: python benchmarks/two_tower.py --sizes {' '.join(args.sizes)} --examples {args.examples}")


if __name__ == "__main__":
    main()
