"""Item profiles: static attributes, semantic vectors, and the point-in-time index of every item's ratings.

- `build_item_table` (DuckDB): one row per movie — year, genres, TMDb directors (crew job `Director`, at most 2,
  by person id) and top-3 billed cast (by `cast_order`), runtime, log budget / revenue, vote average, log vote
  count. TMDb values are a SNAPSHOT (TMDb keeps no history), not point-in-time; absent without TMDb data.
- `semantic_arrays`: the item embeddings aligned with the table's rows, plus a 32-d PCA of them (unit norm)
  that the similarity features use (a 32-d dot product per sample instead of a 384-d or 1024-d one).
- `item_events_index`: an `AsOfIndex` over the protocol's source rows keyed by movie (ratings, squares, likes):
  an item's popularity and rating statistics as of any cut-off.
- `Circulation`: the source rows sorted by time — a uniform draw among the rows of a time window is a draw of
  an item in proportion to its popularity THEN (the popularity negatives).
- `ItemFeatures`: the table and vectors as NumPy arrays indexed by position (`index(movie_ids)`).
- `write_user_profiles`: every user's profile at their window start and test start (the `user_profile` asset),
  computed by the ranking features' own functions (`RankingFeatureEngine.user_features`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.data.duck import register_parquet_view, sql_str
from movielens_assets.core.ranking.asof import AsOfIndex

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

    from movielens_assets.core.ranking.features import RankingFeatureEngine
    from movielens_assets.core.ranking.sequences import SequenceStore

LIKED = 4.0
"""`like` = rating >= 4 stars (the label, and what "liked history" means in the features)."""
MAX_DIRECTORS, TOP_CAST = 2, 3
SEMANTIC_PCA_DIM = 32
TMDB_COLUMNS = ("tmdb_runtime", "tmdb_log_budget", "tmdb_log_revenue", "tmdb_vote_average", "tmdb_log_vote_count")
_TMDB_VIEWS = {
    "movie_tmdb": "movie_id INTEGER, tmdb_id INTEGER, has_payload BOOLEAN",
    "tmdb_movie": "tmdb_id INTEGER, runtime INTEGER, budget BIGINT, revenue BIGINT, vote_average DOUBLE, "
                  "vote_count INTEGER",
    "tmdb_cast": "credit_id VARCHAR, tmdb_id INTEGER, person_id INTEGER, cast_order INTEGER",
    "tmdb_crew": "credit_id VARCHAR, tmdb_id INTEGER, person_id INTEGER, job VARCHAR",
}


def build_item_table(con: duckdb.DuckDBPyConnection, movies: Path, tmdb_dir: Path | None) -> tuple[pa.Table, bool]:
    """(items table sorted by movie_id, whether TMDb data was there). Every movie of `movies` has a row."""
    if not Path(movies).is_file():
        raise FileNotFoundError(f"{movies} does not exist: materialize `movies` (group ingest) first")
    used = {name: register_parquet_view(con, f"_rk_{name}", Path(tmdb_dir) / f"{name}.parquet" if tmdb_dir else None,
                                        cols) for name, cols in _TMDB_VIEWS.items()}
    has_tmdb = used["movie_tmdb"] == "used" and used["tmdb_movie"] == "used"
    table = con.sql(f"""
        WITH link AS (SELECT movie_id, tmdb_id FROM _rk_movie_tmdb WHERE has_payload),
        directors AS (
            SELECT tmdb_id, list(person_id ORDER BY person_id)[1:{MAX_DIRECTORS}] AS directors
            FROM (SELECT DISTINCT tmdb_id, person_id FROM _rk_tmdb_crew WHERE job = 'Director') GROUP BY tmdb_id),
        cast_ AS (
            SELECT tmdb_id, list(person_id ORDER BY billing, first_credit)[1:{TOP_CAST}] AS top_cast
            FROM (SELECT tmdb_id, person_id, min(coalesce(cast_order, 2147483647)) AS billing,
                         min(credit_id) AS first_credit FROM _rk_tmdb_cast GROUP BY tmdb_id, person_id)
            GROUP BY tmdb_id)
        SELECT m.movie_id::INTEGER AS movie_id, m.year::INTEGER AS year, m.genres,
               coalesce(d.directors, []::INTEGER[]) AS directors, coalesce(c.top_cast, []::INTEGER[]) AS top_cast,
               t.runtime::FLOAT AS tmdb_runtime, ln(1 + t.budget)::FLOAT AS tmdb_log_budget,
               ln(1 + t.revenue)::FLOAT AS tmdb_log_revenue, t.vote_average::FLOAT AS tmdb_vote_average,
               ln(1 + t.vote_count)::FLOAT AS tmdb_log_vote_count, t.tmdb_id IS NOT NULL AS has_tmdb
        FROM read_parquet({sql_str(movies)}) m
        LEFT JOIN link l USING (movie_id)
        LEFT JOIN _rk_tmdb_movie t ON t.tmdb_id = l.tmdb_id
        LEFT JOIN directors d ON d.tmdb_id = l.tmdb_id
        LEFT JOIN cast_ c ON c.tmdb_id = l.tmdb_id""").to_arrow_table()
    # sorted here, not by an ORDER BY: with `preserve_insertion_order = false` DuckDB 2.0 has returned
    # ORDER BY results out of order through the DB-API Arrow path (docs/ARCHITECTURE.md, "Query engine")
    return table.sort_by("movie_id"), has_tmdb


def semantic_arrays(table_movie_ids: np.ndarray, movie_ids: np.ndarray | None, vectors: np.ndarray | None,
                    pca_dim: int = SEMANTIC_PCA_DIM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors [n, d] float32 aligned with `table_movie_ids` (zeros where absent), has [n] bool, pca [n, k]
    float32 unit-norm projections on the top-k principal axes of the present vectors)."""
    n = len(table_movie_ids)
    if movie_ids is None or vectors is None or len(movie_ids) == 0:
        return np.zeros((n, 0), np.float32), np.zeros(n, bool), np.zeros((n, 0), np.float32)
    pos = np.searchsorted(table_movie_ids, movie_ids)
    ok = (pos < n) & (np.asarray(table_movie_ids)[np.minimum(pos, n - 1)] == movie_ids)
    out = np.zeros((n, vectors.shape[1]), np.float32)
    out[pos[ok]] = vectors[ok]
    has = np.zeros(n, bool)
    has[pos[ok]] = True
    present = out[has].astype(np.float64)
    k = int(min(pca_dim, present.shape[1], max(present.shape[0] - 1, 1)))
    mean = present.mean(axis=0)
    _, _, vt = np.linalg.svd(present - mean, full_matrices=False)
    proj = np.zeros((n, k), np.float32)
    p = (present - mean) @ vt[:k].T
    proj[has] = (p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out, has, proj


def item_events_index(store: SequenceStore) -> AsOfIndex:
    """Every item's source rows by time: count, rating sum, rating-square sum and likes before any cut-off."""
    r = np.asarray(store.rating, dtype=np.float64)
    return AsOfIndex(np.asarray(store.movie_id, dtype=np.int64), store.ts,
                     {"rating": r, "rating_sq": r * r, "liked": (r >= LIKED).astype(np.float64)})


@dataclass(frozen=True)
class Circulation:
    """The source rows sorted by time (`ts`, `movie_id`): what was being rated when."""

    ts: np.ndarray
    movie_id: np.ndarray

    @classmethod
    def from_store(cls, store: SequenceStore) -> Circulation:
        order = np.argsort(store.ts, kind="stable")
        return cls(np.asarray(store.ts)[order], np.asarray(store.movie_id)[order])

    def draw(self, cutoffs: np.ndarray, window_s: float | None, rng: np.random.Generator) -> np.ndarray:
        """One movie per cut-off, popularity-weighted as of it: a uniform draw among the rows of the
        `window_s` seconds before the cut-off (all earlier rows when that window is empty, or for
        `window_s=None`); -1 when nothing was rated before the cut-off."""
        cutoffs = np.asarray(cutoffs, dtype=np.int64)
        hi = np.searchsorted(self.ts, cutoffs, side="left")
        lo = np.zeros_like(hi) if window_s is None else np.searchsorted(self.ts, cutoffs - int(window_s), side="left")
        lo = np.where(lo < hi, lo, 0)
        span = hi - lo
        pick = lo + np.floor(rng.random(cutoffs.size) * span).astype(np.int64)
        return np.where(span > 0, np.asarray(self.movie_id)[np.minimum(pick, max(self.ts.size - 1, 0))], -1)

    def save(self, directory: str | os.PathLike[str]) -> None:
        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / "ts.npy", self.ts)
            np.save(tmp / "movie_id.npy", self.movie_id)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Circulation:
        directory = Path(directory)
        return cls(np.load(directory / "ts.npy", mmap_mode="r"), np.load(directory / "movie_id.npy", mmap_mode="r"))


@dataclass(frozen=True)
class ItemFeatures:
    """The item table as arrays by position (`movie_ids` sorted). Directors / cast are TMDb person ids padded
    with -1; `genre_share` rows sum to 1 over the movie's genres (0 rows for movies without genres)."""

    movie_ids: np.ndarray  # int64
    genres: tuple[str, ...]  # genre vocabulary (sorted)
    genre_share: np.ndarray  # float32 [n, G]
    year: np.ndarray  # float32, NaN unknown
    directors: np.ndarray  # int64 [n, MAX_DIRECTORS]
    top_cast: np.ndarray  # int64 [n, TOP_CAST]
    tmdb: np.ndarray  # float32 [n, len(TMDB_COLUMNS)], NaN where absent
    has_tmdb_data: bool  # any TMDb data at all (else the TMDb features are absent)
    semantic: np.ndarray  # float32 [n, d] (d = 0 without embeddings)
    semantic_pca: np.ndarray  # float32 [n, k]
    has_semantic: np.ndarray  # bool [n]

    @property
    def has_semantic_data(self) -> bool:
        return bool(self.semantic_pca.shape[1] and self.has_semantic.any())

    def index(self, movie_ids: np.ndarray) -> np.ndarray:
        """Positions of raw movie ids (-1 for movies not in the table)."""
        raw = np.asarray(movie_ids, dtype=np.int64)
        n = self.movie_ids.size
        pos = np.searchsorted(self.movie_ids, raw)
        pos_c = np.minimum(pos, max(n - 1, 0))
        ok = (pos < n) & (self.movie_ids[pos_c] == raw) if n else np.zeros(raw.shape, bool)
        return np.where(ok, pos_c, -1)

    @classmethod
    def from_table(cls, table: pa.Table, has_tmdb_data: bool, semantic: np.ndarray, has_semantic: np.ndarray,
                   semantic_pca: np.ndarray) -> ItemFeatures:
        movie_ids = table.column("movie_id").to_numpy().astype(np.int64)
        genre_lists = table.column("genres").to_pylist()
        vocab = tuple(sorted({g for gs in genre_lists for g in (gs or [])}))
        col = {g: j for j, g in enumerate(vocab)}
        rows = [i for i, gs in enumerate(genre_lists) for _ in (gs or [])]
        cols = [col[g] for gs in genre_lists for g in (gs or [])]
        share = np.zeros((movie_ids.size, len(vocab)), np.float32)
        np.add.at(share, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1.0)
        year = table.column("year").to_numpy(zero_copy_only=False).astype(np.float32)  # null -> nan
        return cls(movie_ids, vocab, share, year, _padded(table.column("directors").to_pylist(), MAX_DIRECTORS),
                   _padded(table.column("top_cast").to_pylist(), TOP_CAST),
                   np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in TMDB_COLUMNS],
                            axis=1),
                   bool(has_tmdb_data), semantic, semantic_pca, has_semantic)

    # ---- persistence: items.parquet + the semantic arrays + meta.json in one directory
    def save(self, directory: str | os.PathLike[str], table: pa.Table) -> None:
        import pyarrow.parquet as pq

        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            pq.write_table(table, tmp / "items.parquet", compression="zstd")
            np.save(tmp / "semantic.npy", self.semantic)
            np.save(tmp / "semantic_pca.npy", self.semantic_pca)
            np.save(tmp / "has_semantic.npy", self.has_semantic)
            (tmp / "meta.json").write_text(json.dumps({"has_tmdb_data": self.has_tmdb_data, "genres": self.genres,
                                                       "semantic_dim": int(self.semantic.shape[1])}))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ItemFeatures:
        import pyarrow.parquet as pq

        directory = Path(directory)
        if not (directory / "meta.json").is_file():
            raise FileNotFoundError(f"{directory}: no item profile here (materialize `item_profile` first)")
        meta = json.loads((directory / "meta.json").read_text())
        return cls.from_table(pq.read_table(directory / "items.parquet"), meta["has_tmdb_data"],
                              np.load(directory / "semantic.npy"), np.load(directory / "has_semantic.npy"),
                              np.load(directory / "semantic_pca.npy"))


def _padded(lists: list[list[int] | None], width: int) -> np.ndarray:
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for i, values in enumerate(lists):
        vals = (values or [])[:width]
        out[i, : len(vals)] = vals
    return out


USER_PROFILE_CHUNK = 500_000
"""Users whose profiles are computed and written together by `write_user_profiles`."""


def write_user_profiles(store: SequenceStore, engine: RankingFeatureEngine, path: str | os.PathLike[str]) -> int:
    """Each user's profile at their window start and at their test start (activity, rating mean / std, like
    rate, recency, genre shares and top-3 genres) -> one Parquet file at `path` (atomically, genres in its
    key-value metadata `movielens.genres`): exactly what the ranking features see at those cut-offs, from
    history strictly before the cut-off. Returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path
    from movielens_assets.core.ranking.samples import user_chunks
    from movielens_assets.core.ranking.sequences import NO_TIME

    genres = np.asarray(engine.items.genres, dtype=object)
    rows = 0
    with atomic_path(path) as tmp:
        writer = None
        try:
            for users in user_chunks(store, np.arange(store.n_users), USER_PROFILE_CHUNK):
                chunk = engine.chunk(store, users)
                local = np.arange(users.size)
                for stage, starts in (("window", chunk.window_start), ("test", chunk.test_start)):
                    sel = local[starts != NO_TIME]
                    if not sel.size:
                        continue
                    cut = starts[sel]
                    feats = engine.user_features(chunk, sel, cut)
                    share, _ = engine.user_genre_shares(chunk, sel, cut)
                    top = np.argsort(-share, axis=1, kind="stable")[:, :3]
                    top_names = [[str(genres[j]) for j in row if share[i, j] > 0] for i, row in enumerate(top)]
                    table = pa.table({
                        "user_id": chunk.user_ids[sel].astype(np.int32), "stage": [stage] * sel.size,
                        "cutoff_ts": cut, "seq_pos": chunk.seq_pos(sel, cut).astype(np.int32),
                        **{k: v.astype(np.float32) for k, v in feats.items()},
                        "genre_share": pa.FixedSizeListArray.from_arrays(
                            pa.array(share.astype(np.float32).ravel()), max(len(genres), 1))
                        if len(genres) else pa.array([[] for _ in range(sel.size)], pa.list_(pa.float32())),
                        "top_genres": top_names})
                    if writer is None:
                        meta = {"movielens.genres": ",".join(genres)}
                        writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta), compression="zstd")
                    writer.write_table(table)
                    rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
    return rows
