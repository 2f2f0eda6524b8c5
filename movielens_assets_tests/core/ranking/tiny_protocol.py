"""A small, hand-shaped dataset for the ranking core: ratings with sessions (equal timestamps), the last_n
splits and its window, a movies table, optional TMDb star tables and embeddings, and a window merged list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from movielens_assets.core.evaluation.splits import protocol_stages, write_splits
from movielens_assets.core.ranking.features import RankingFeatureEngine
from movielens_assets.core.ranking.profiles import (
    Circulation,
    ItemFeatures,
    build_item_table,
    item_events_index,
    semantic_arrays,
)
from movielens_assets.core.ranking.samples import CandidateLists
from movielens_assets.core.ranking.sequences import SequenceStore, build_sequence_store

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]
CHANNELS = ("popularity", "itemcf")


@dataclass
class TinyProtocol:
    root: Path
    ratings: Path
    store: SequenceStore
    items: ItemFeatures
    engine: RankingFeatureEngine
    circulation: Circulation
    candidates: CandidateLists
    interacted: np.ndarray  # sorted user << 32 | movie keys of every rating (test rows included)
    test: Path


def ratings_rows(seed: int = 0, n_users: int = 30, n_movies: int = 40) -> list[tuple[int, int, float, int]]:
    """(user, movie, rating, ts): 9..20 ratings per user in sessions (some seconds shared), over ~2 years; a
    user rates mostly movies of its taste group (movie_id % 4 == user_id % 4): a signal a ranker can learn."""
    rng = np.random.default_rng(seed)
    rows = []
    all_movies = np.arange(1, n_movies + 1)
    for u in range(1, n_users + 1):
        k = int(rng.integers(9, 21))
        weight = np.where(all_movies % 4 == u % 4, 6.0, 1.0)
        movies = rng.choice(all_movies, size=k, replace=False, p=weight / weight.sum())
        t = 1_500_000_000 + int(rng.integers(0, 40_000_000))
        for m in movies:
            t += int(rng.choice([0, 0, 5, 60, 86_400 * int(rng.integers(1, 30))]))
            rows.append((u, int(m), float(rng.integers(1, 11)) / 2, t))
    return rows


def write_ratings(path: Path, rows) -> Path:
    table = pa.table({"user_id": pa.array([r[0] for r in rows], pa.int32()),
                      "movie_id": pa.array([r[1] for r in rows], pa.int32()),
                      "rating": pa.array([r[2] for r in rows], pa.float32()),
                      "timestamp": pa.array([r[3] * 1_000_000 for r in rows], pa.timestamp("us"))})
    pq.write_table(table.sort_by([("user_id", "ascending"), ("timestamp", "ascending")]), path)
    return path


def write_movies(path: Path, n_movies: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + 1)
    genres = [sorted(set(rng.choice(GENRES, size=int(rng.integers(0, 3)), replace=True).tolist()))
              for _ in range(n_movies)]
    pq.write_table(pa.table({
        "movie_id": pa.array(range(1, n_movies + 1), pa.int32()),
        "title": [f"Movie {i}" for i in range(1, n_movies + 1)],
        "year": pa.array([None if i % 13 == 0 else 1980 + i for i in range(1, n_movies + 1)], pa.int32()),
        "genres": pa.array(genres, pa.list_(pa.string())),
    }), path)
    return path


def write_tmdb(directory: Path, n_movies: int = 40) -> Path:
    """Star tables for movies 1..n-3 (the last 3 have no TMDb payload): directors 900 + m % 5 (movie 2 has
    two), cast 500 + (m + j) % 7 for j < 4 (top 3 by cast_order)."""
    directory.mkdir(parents=True, exist_ok=True)
    linked = list(range(1, n_movies - 2))
    pq.write_table(pa.table({"movie_id": pa.array(range(1, n_movies + 1), pa.int32()),
                             "tmdb_id": pa.array([10_000 + m for m in range(1, n_movies + 1)], pa.int32()),
                             "has_payload": [m in linked for m in range(1, n_movies + 1)]}),
                   directory / "movie_tmdb.parquet")
    pq.write_table(pa.table({"tmdb_id": pa.array([10_000 + m for m in linked], pa.int32()),
                             "runtime": pa.array([90 + m for m in linked], pa.int32()),
                             "budget": pa.array([0 if m % 4 == 0 else m * 1_000_000 for m in linked], pa.int64()),
                             "revenue": pa.array([m * 2_000_000 for m in linked], pa.int64()),
                             "vote_average": [5.0 + m / 10 for m in linked],
                             "vote_count": pa.array([m * 10 for m in linked], pa.int32())}),
                   directory / "tmdb_movie.parquet")
    crew = [(f"d{m}", 10_000 + m, 900 + m % 5, "Director") for m in linked] + [("d2b", 10_002, 950, "Director"),
                                                                               ("w1", 10_001, 960, "Writer")]
    pq.write_table(pa.table({"credit_id": [c[0] for c in crew], "tmdb_id": pa.array([c[1] for c in crew], pa.int32()),
                             "person_id": pa.array([c[2] for c in crew], pa.int32()), "job": [c[3] for c in crew]}),
                   directory / "tmdb_crew.parquet")
    cast = [(f"c{m}_{j}", 10_000 + m, 500 + (m + j) % 7, j) for m in linked for j in range(4)]
    pq.write_table(pa.table({"credit_id": [c[0] for c in cast], "tmdb_id": pa.array([c[1] for c in cast], pa.int32()),
                             "person_id": pa.array([c[2] for c in cast], pa.int32()),
                             "cast_order": pa.array([c[3] for c in cast], pa.int32())}),
                   directory / "tmdb_cast.parquet")
    return directory


def window_merged(store: SequenceStore, n_movies: int = 40, seed: int = 0) -> pa.Table:
    """A merged window list per window user: 15 movies (some the user rated, incl. test items) with ranks."""
    rng = np.random.default_rng(seed + 2)
    users = np.asarray(store.user_ids)[np.asarray(store.window_start) != np.iinfo(np.int64).max]
    rows = []
    for u in users.tolist():
        for r, m in enumerate(rng.choice(np.arange(1, n_movies + 1), size=15, replace=False).tolist(), start=1):
            rows.append((u, m, r, 1.0 / r, r if r % 2 else None, float(r) if r % 2 else None, r, 0.5))
    cols = list(zip(*rows, strict=True))
    return pa.table({"user_id": pa.array(cols[0], pa.int32()), "movie_id": pa.array(cols[1], pa.int32()),
                     "rank": pa.array(cols[2], pa.int32()), "score": pa.array(cols[3], pa.float32()),
                     "rank_popularity": pa.array(cols[4], pa.int32()),
                     "score_popularity": pa.array(cols[5], pa.float32()),
                     "rank_itemcf": pa.array(cols[6], pa.int32()), "score_itemcf": pa.array(cols[7], pa.float32())})


def build(root: Path, rows=None, *, tmdb: bool = True, semantic: bool = True, seed: int = 0) -> TinyProtocol:
    root.mkdir(parents=True, exist_ok=True)
    ratings = write_ratings(root / "ratings.parquet", rows if rows is not None else ratings_rows(seed))
    movies = write_movies(root / "movies.parquet", seed=seed)
    con = duckdb.connect()
    write_splits(con, ratings, root / "splits")
    test_stage, window = protocol_stages(root / "splits", "last_n")
    store = build_sequence_store(con, window.fit_dir / "train.parquet", window.fit_dir / "valid.parquet",
                                 test_stage.fit_dir / "test.parquet")
    table, has_tmdb = build_item_table(con, movies, write_tmdb(root / "tmdb") if tmdb else None)
    ids = table.column("movie_id").to_numpy()
    vectors = np.random.default_rng(seed + 3).normal(size=(ids.size - 5, 16)).astype(np.float32)
    sem = semantic_arrays(ids, ids[5:].astype(np.int64), vectors) if semantic else semantic_arrays(ids, None, None)
    items = ItemFeatures.from_table(table, has_tmdb, *sem)
    engine = RankingFeatureEngine(items, item_events_index(store), CHANNELS)
    r = con.execute(f"SELECT user_id::BIGINT AS u, movie_id::BIGINT AS m FROM read_parquet('{ratings}')").fetchnumpy()
    return TinyProtocol(root, ratings, store, items, engine, Circulation.from_store(store),
                        CandidateLists.from_table(window_merged(store, seed=seed), CHANNELS),
                        np.sort((r["u"] << 32) | r["m"]), test_stage.fit_dir / "test.parquet")
