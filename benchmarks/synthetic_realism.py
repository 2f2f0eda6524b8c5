"""Realism of the synthetic generator: recall channels on synthetic data next to real MovieLens-100K.

    .venv/bin/python benchmarks/synthetic_realism.py                        # synthetic-small synthetic-1m
    .venv/bin/python benchmarks/synthetic_realism.py synthetic-small --seed 42 --out /tmp/realism
    .venv/bin/python benchmarks/synthetic_realism.py synthetic-small --channels popularity popularity_recent itemcf

For each dataset: generate it (`core.data.synthetic.generate_movielens`, no TMDb payloads), ingest ratings and
movies to Parquet (`core.data.ingest.ingest_csv`, as the ingest assets do), write both evaluation protocols
(`core.evaluation.splits.write_splits`), fit on the `last_n` train split (each user's last 3 interactions are
test): popularity, popularity_recent (90-day window before the last training timestamp), ItemCF (default
`ItemCFParams`) and two-tower (default `TwoTowerConfig`, genre / year side features from the movies table as the
`two_tower_recall` asset builds them, no item embeddings); recommend 200 items to every test user in batches
of 4,096 (as `write_channel_candidates`) and evaluate with `core.evaluation.metrics.evaluate` over ALL test users.

Prints, per dataset, the channel table (Recall@20 [95% bootstrap CI], NDCG@20, Recall@100) beside the real
ML-100K values measured with the same protocol, the popularity_recent / popularity ratio at Recall@20, the
number of global_time test users, and generator statistics: the top-10% share of ratings, the share of ratings
whose timestamp equals the same user's previous rating's timestamp, sessions (a user's ratings cut at gaps of
more than an hour: median length), the share of ratings made on the user's first day, and the time span.

Everything is written under --out (default: a temporary directory, deleted at the end); the generator skips a
dataset that is already there (same spec, seed and generator version). Two-tower on synthetic-1m takes a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANNELS = ("popularity", "popularity_recent", "itemcf", "two_tower")
K = 200  # movielens_assets.core.recall.runner.CANDIDATES_PER_CHANNEL
RECOMMEND_BATCH = 4096  # movielens_assets.core.recall.runner.RECOMMEND_BATCH
RECENT_WINDOW_DAYS = 90.0  # movielens_assets.assets.recall.PopularityConfig.recent_window_days
SESSION_GAP_S = 3600

#: Real MovieLens-100K, protocol last_n, all users: Recall@20, NDCG@20, Recall@100 (measured by the project
#: with the same channels and protocol; popularity_recent: Recall@20 only).
REAL_ML100K: dict[str, tuple[float, float | None, float | None]] = {
    "popularity": (0.098, 0.055, 0.298),
    "popularity_recent": (0.105, None, None),
    "itemcf": (0.235, 0.141, 0.584),
    "two_tower": (0.291, 0.171, 0.637),
}


def prepare(name: str, seed: int, work: Path) -> dict:
    """Generate, ingest (ratings, movies) and split; returns the generator stats and the split counts."""
    from movielens_assets.core.data import duck
    from movielens_assets.core.data.ingest import (
        DEFAULT_MEMORY_LIMIT,
        TABLES,
        ingest_csv,
    )
    from movielens_assets.core.data.synthetic import (
        generate_movielens,
        parse_synthetic_name,
    )
    from movielens_assets.core.evaluation.splits import write_splits

    raw = work / f"{name}-seed{seed}"
    t = time.perf_counter()
    stats = generate_movielens(parse_synthetic_name(name), raw, seed=seed, tmdb_payloads=False)
    gen_s = time.perf_counter() - t
    con = duck.connect(memory_limit=DEFAULT_MEMORY_LIMIT, temp_dir=work / ".tmp")
    try:
        for table in ("ratings", "movies"):
            ingest_csv(con, TABLES[table], raw, work / "processed" / f"{table}.parquet", dataset=name)
        counts = write_splits(con, work / "processed" / "ratings.parquet", work / "splits")
    finally:
        con.close()
    return {"generator": stats, "generate_s": round(gen_s, 1), "splits": counts}


def timing_stats(ratings: Path) -> dict:
    """Ties, sessions, first-day share and span of the ratings Parquet (sorted by user, time)."""
    import pyarrow.parquet as pq

    t = pq.read_table(ratings, columns=["user_id", "timestamp"])
    u = t.column("user_id").to_numpy().astype(np.int64)
    ts = t.column("timestamp").cast("int64").to_numpy() // 1_000_000  # microseconds -> seconds
    o = np.lexsort((ts, u))
    u, ts = u[o], ts[o]
    same_user = np.r_[False, u[1:] == u[:-1]]
    gap = np.r_[0, np.diff(ts)]
    tie = same_user & (gap == 0)
    new_session = ~same_user | (gap > SESSION_GAP_S)
    sess_len = np.diff(np.r_[np.flatnonzero(new_session), u.size])
    first_ts = ts[np.r_[np.flatnonzero(~same_user)]]
    n_per_user = np.diff(np.r_[np.flatnonzero(~same_user), u.size])
    first_day = ts < np.repeat(first_ts, n_per_user) + 86_400
    days = (ts.max() - ts.min()) / 86_400
    return {
        "tie_share": float(tie.mean()),
        "gap_le_60s_share": float((same_user & (gap <= 60)).sum() / max(same_user.sum(), 1)),
        "median_session_len": float(np.median(sess_len)),
        "ratings_in_sessions_ge10": float(sess_len[sess_len >= 10].sum() / u.size),
        "first_day_share": float(first_day.mean()),
        "first": time.strftime("%Y-%m-%d", time.gmtime(int(ts.min()))),
        "last": time.strftime("%Y-%m-%d", time.gmtime(int(ts.max()))),
        "span_days": round(float(days), 1),
    }


def make_channel(name: str, split, movies: Path):
    from movielens_assets.core.recall.itemcf import ItemCFParams, ItemCFRecall
    from movielens_assets.core.recall.popularity import PopularityRecall

    if name == "popularity":
        return PopularityRecall()
    if name == "popularity_recent":
        return PopularityRecall(window_days=RECENT_WINDOW_DAYS)
    if name == "itemcf":
        return ItemCFRecall(ItemCFParams())
    if name == "two_tower":
        import pyarrow.parquet as pq

        from movielens_assets.core.recall.two_tower import (
            TwoTowerConfig,
            TwoTowerRecall,
            item_features_from_movies,
        )

        mv = pq.read_table(movies, columns=["movie_id", "year", "genres"])
        multi_hot, years, _ = item_features_from_movies(
            split.ids, mv.column("movie_id").to_numpy().astype(np.int64), mv.column("year").to_pylist(),
            mv.column("genres").to_pylist())
        return TwoTowerRecall(TwoTowerConfig(), item_genres=multi_hot, item_years=years, device="cpu")
    raise ValueError(f"unknown channel {name!r}; one of {CHANNELS}")


def evaluate_channels(work: Path, channels: list[str], n_boot: int) -> dict[str, dict]:
    from movielens_assets.core.data import duck
    from movielens_assets.core.evaluation.metrics import evaluate
    from movielens_assets.core.evaluation.splits import load_split

    con = duck.connect()
    try:
        split = load_split(con, work / "splits" / "last_n")
    finally:
        con.close()
    users = split.test_user_index
    popularity = (split.ids.item_ids, split.item_popularity())
    out: dict[str, dict] = {}
    for name in channels:
        t = time.perf_counter()
        model = make_channel(name, split, work / "processed" / "movies.parquet").fit(split.train)
        fit_s = time.perf_counter() - t
        parts = [model.recommend(users[s : s + RECOMMEND_BATCH], K)[0] for s in range(0, users.size, RECOMMEND_BATCH)]
        items = np.concatenate(parts).astype(np.int64)
        rec = np.where(items >= 0, split.ids.item_raw(np.maximum(items, 0)), -1)
        m = evaluate(rec, split.test_users, split.test_user_ids, split.test_movie_ids, split.test_ratings,
                     item_popularity=popularity, n_catalogue=split.ids.n_items, n_boot=n_boot)
        out[name] = {key: m[key] for key in ("recall@20", "recall@20_ci", "ndcg@20", "recall@100", "users")}
        out[name]["seconds"] = round(time.perf_counter() - t, 1)
        print(f"  {name}: Recall@20 {m['recall@20']:.4f} (fit {fit_s:.1f}s, total {out[name]['seconds']}s)",
              file=sys.stderr)
    return out


def _fmt(x: float | None) -> str:
    return "    -" if x is None else f"{x:.3f}"


def report(name: str, prep: dict, timing: dict, metrics: dict[str, dict]) -> str:
    g = prep["generator"]
    title = (f"## {name} (generator stats: {g['n_ratings']:,} ratings, {g['n_users']:,} users, "
             f"{g['n_movies']:,} movies, generated in {prep['generate_s']}s)")
    lines = [title, "",
             "| channel | Recall@20 [95% CI] | NDCG@20 | Recall@100 | ML-100K Recall@20 | NDCG@20 | Recall@100 |",
             "|---|---|---|---|---|---|---|"]
    for ch, m in metrics.items():
        lo, hi = m["recall@20_ci"]
        real = REAL_ML100K.get(ch, (None, None, None))
        lines.append(f"| {ch} | {m['recall@20']:.3f} [{lo:.3f}, {hi:.3f}] | {m['ndcg@20']:.3f} | "
                     f"{m['recall@100']:.3f} | {_fmt(real[0])} | {_fmt(real[1])} | {_fmt(real[2])} |")
    lines.append("")
    r = {ch: m["recall@20"] for ch, m in metrics.items()}
    ratios = []
    if "popularity" in r and "popularity_recent" in r:
        ratios.append(f"popularity_recent / popularity {r['popularity_recent'] / r['popularity']:.2f} (ML-100K 1.07)")
    if "popularity" in r and "itemcf" in r:
        ratios.append(f"itemcf / popularity {r['itemcf'] / r['popularity']:.2f} (ML-100K 2.40)")
    if "itemcf" in r and "two_tower" in r:
        ratios.append(f"two_tower / itemcf {r['two_tower'] / r['itemcf']:.2f} (ML-100K 1.24)")
    if ratios:
        lines.append("Recall@20 ratios: " + "; ".join(ratios))
    s = prep["splits"]
    lines.append(f"Test users: last_n {s['last_n']['test_users']:,}; global_time {s['global_time']['test_users']:,} "
                 f"(of {g['n_users']:,})")
    lines.append(f"Generator: top-10% share {g['top10_share']:.3f}; ties (timestamp = the user's previous one) "
                 f"{timing['tie_share']:.3f}; gaps <= 60 s {timing['gap_le_60s_share']:.3f}; median session "
                 f"{timing['median_session_len']:.0f} ratings (gap > 1 h cuts); ratings on the user's first day "
                 f"{timing['first_day_share']:.3f}; span {timing['first']} .. {timing['last']} "
                 f"({timing['span_days']:.0f} days); ratings before release {g['ratings_before_release']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=["synthetic-small", "synthetic-1m"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one, deleted)")
    parser.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=CHANNELS)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    tmp = None
    base = args.out
    if base is None:
        tmp = tempfile.mkdtemp(prefix="synthetic-realism-")
        base = Path(tmp)
    results = {}
    try:
        for name in args.datasets:
            work = base / name / f"seed{args.seed}"
            print(f"{name}: preparing in {work}", file=sys.stderr)
            prep = prepare(name, args.seed, work)
            timing = timing_stats(work / "processed" / "ratings.parquet")
            metrics = evaluate_channels(work, args.channels, args.n_boot)
            print(report(name, prep, timing, metrics) + "\n", flush=True)
            results[name] = {"prepare": prep, "timing": timing, "metrics": metrics}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
