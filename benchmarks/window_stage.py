"""What the window stage costs: every recall channel fitted on last_n's window stage, beside its test stage.

    .venv/bin/python benchmarks/window_stage.py --size 32m          # after benchmarks/ranking_samples.py --sizes 32m
    .venv/bin/python benchmarks/window_stage.py --size 1m --channels popularity itemcf

The window stage (docs/RANKING.md) fits every channel a second time on last_n's train minus each user's last 3
train rows and writes its candidates for the window users (global_time's window shares its test fit: no
extra fit). This script measures, per channel and stage, the fit time, the batch recommend time for all the
stage's users (batches of 4,096, k = 200, as `write_channel_candidates`) and the peak RSS, each in a fresh
process, on the splits prepared by `benchmarks/ranking_samples.py` (`--work-dir`/<size>/splits/, written by
the project's `write_splits`). The window stage's extra time = the sum of its rows.

Channels as the assets configure them: `PopularityRecall()`, `ItemCFRecall(ItemCFParams())`, `TwoTowerRecall`
(asset defaults, with `max_examples_per_epoch` = --tt-max-examples: the bound the README gives for a CPU at
32M; genres / years from movies.parquet; no semantic embeddings), `SemanticRecall` over RANDOM unit 384-d
embeddings (synthetic data has no texts to embed: the neighbour search does the same work, the quality is
meaningless).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANNELS = ("popularity", "itemcf", "two_tower", "semantic")
BATCH, K = 4096, 200


def _child(size_dir: Path, stage_name: str, channel: str, tt_max_examples: int) -> dict:
    import duckdb
    import numpy as np
    import pyarrow.parquet as pq

    from movielens_assets.core.evaluation.splits import load_stage, protocol_stages

    stage = dict(zip(("test", "window"), protocol_stages(size_dir / "splits", "last_n"), strict=True))[stage_name]
    t0 = time.perf_counter()
    split = load_stage(duckdb.connect(), stage)
    load_s = time.perf_counter() - t0
    if channel == "popularity":
        from movielens_assets.core.recall.popularity import PopularityRecall

        model = PopularityRecall()
    elif channel == "itemcf":
        from movielens_assets.core.recall.itemcf import ItemCFParams, ItemCFRecall

        model = ItemCFRecall(ItemCFParams())
    elif channel == "two_tower":
        from movielens_assets.core.recall.two_tower import TwoTowerConfig, TwoTowerRecall, item_features_from_movies

        movies = pq.read_table(size_dir / "movies.parquet", columns=["movie_id", "year", "genres"])
        multi_hot, years, _ = item_features_from_movies(split.ids, movies.column("movie_id").to_numpy(),
                                                        movies.column("year").to_pylist(),
                                                        movies.column("genres").to_pylist())
        model = TwoTowerRecall(TwoTowerConfig(max_examples_per_epoch=tt_max_examples), item_genres=multi_hot,
                               item_years=years, device="cpu")
    else:
        from movielens_assets.core.recall.semantic import SemanticConfig, SemanticRecall

        rng = np.random.default_rng(0)
        emb = rng.standard_normal((split.ids.n_items, 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        model = SemanticRecall(emb, np.ones(split.ids.n_items, bool), SemanticConfig())
    t1 = time.perf_counter()
    model.fit(split.train)
    fit_s = time.perf_counter() - t1
    users = split.test_user_index
    t2 = time.perf_counter()
    for s in range(0, users.size, BATCH):
        model.recommend(users[s : s + BATCH], K)
    rec_s = time.perf_counter() - t2
    return {"stage": stage_name, "channel": channel, "train_rows": int(split.train.items.size),
            "users": int(users.size), "load_s": round(load_s, 1), "fit_s": round(fit_s, 1),
            "recommend_s": round(rec_s, 1), "users_per_s": round(users.size / max(rec_s, 1e-9)),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="32m")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_ranking"))
    parser.add_argument("--channels", nargs="*", default=list(CHANNELS))
    parser.add_argument("--tt-max-examples", type=int, default=2_000_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size_dir = args.work_dir / args.size
    if args.child:
        print(json.dumps(_child(size_dir, args.child[0], args.child[1], int(args.child[2]))))
        return
    if not (size_dir / "splits" / "last_n" / "window" / "train.parquet").is_file():
        raise SystemExit(f"{size_dir}/splits: not prepared — run benchmarks/ranking_samples.py --sizes {args.size} "
                         "first (it writes the splits)")
    rows = []
    for channel in args.channels:
        for stage in ("test", "window"):
            proc = subprocess.run([sys.executable, __file__, "--size", args.size, "--work-dir", str(args.work_dir),
                                   "--child", stage, channel, str(args.tt_max_examples)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"  {channel:<10} {stage:<6} fit {r['fit_s']:>7.1f}s  recommend {r['recommend_s']:>6.1f}s "
                  f"({r['users']:,} users, {r['users_per_s']:,}/s)  peak {r['peak_mb']:,} MB", flush=True)
    print(f"\n### window stage at {args.size} (last_n; global_time's window shares its test fit)\n")
    print("| channel | stage | train rows | users | load s | fit s | recommend s | users/s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['channel']} | {r['stage']} | {r['train_rows']:,} | {r['users']:,} | {r['load_s']} | "
              f"{r['fit_s']} | {r['recommend_s']} | {r['users_per_s']:,} | {r['peak_mb']:,} |")
    extra = sum(r["load_s"] + r["fit_s"] + r["recommend_s"] for r in rows if r["stage"] == "window")
    test = sum(r["load_s"] + r["fit_s"] + r["recommend_s"] for r in rows if r["stage"] == "test")
    print(f"\nwindow stage: {extra:,.0f} s in all (test stage: {test:,.0f} s) for {', '.join(args.channels)}")
    out = args.work_dir / f"window_stage_{args.size}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"results: {out}\ncommand: python benchmarks/window_stage.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
