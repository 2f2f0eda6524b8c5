"""Ranking samples of one user shard: every source row as a positive with 9 negatives, point-in-time features.

Per positive (docs/RANKING.md):
- cut-off: its own timestamp; for the user's window rows the user's window start (what the window-stage
  recall channels saw — exactly how test candidates are ranked); a source row whose cut-off is not before the
  user's test start (the same second as the first test rating: a tie the splits broke by movie id) is not a
  positive;
- negatives never include an item the user rated at ANY time (test rows included) nor repeat within the
  positive's group; window positives first take up to `candidate_negatives` from the user's window merged
  candidates (uniform, without replacement across the user's window positives), every slot left takes a
  popularity draw as of the cut-off (`Circulation`: the ratings of the last `negative_window_days`, then of
  the whole past), then, where the user has rated nearly everything rated so far (or nothing was rated yet),
  a uniform draw over the catalogue — so the ratio is always exactly 1:`negatives`;
- `watch` = 1 for the positive, `like` = rating >= 4; the rating itself is never written.

A shard is built a chunk of users at a time (`positives_per_chunk`): memory is bounded by one chunk whatever
the data size, and the rows are appended to one Parquet file in a directory that replaces the shard's
previous one only when complete (`atomic_path`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.ranking.features import DAY, RankingFeatureEngine, UserChunk, recall_feature_names
from movielens_assets.core.ranking.profiles import LIKED, Circulation
from movielens_assets.core.ranking.sequences import SequenceStore
from movielens_assets.core.ranking.shards import is_validation_user, shard_of

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

POSITIVE, CANDIDATE, POPULARITY, FALLBACK = 0, 1, 2, 3
"""`neg_source` codes."""
KEY_COLUMNS = ("user_id", "movie_id", "pos_id", "watch", "like", "neg_source", "cutoff_ts", "seq_pos", "in_window",
               "valid", "in_candidates")
POPULARITY_ROUNDS, FALLBACK_ROUNDS = 8, 64


@dataclass(frozen=True)
class SamplingConfig:
    negatives: int = 9
    """Negatives per positive (the seed's 1:9)."""
    candidate_negatives: int = 6
    """Of those, at most this many from the user's window candidates (window positives only)."""
    negative_window_days: float = 180.0
    """Popularity negatives: drawn among the ratings of this many days before the cut-off."""
    valid_fraction: float = 0.1
    """Share of users whose window samples are held out (`valid` = 1) for the ranker's early stopping."""
    positives_per_chunk: int = 50_000
    """Users are processed in chunks of about this many positives (memory bound per shard process). At the
    ML-32M shape one shard's private memory grows with the chunk size, and smaller chunks were no slower
    (docs/BENCHMARKS.md, "Ranking samples")."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.negatives < 1 or not 0 <= self.candidate_negatives <= self.negatives:
            raise ValueError(f"need negatives >= 1 and 0 <= candidate_negatives <= negatives, got {self}")
        if not 0.0 <= self.valid_fraction < 1.0 or self.positives_per_chunk < 1:
            raise ValueError(f"need 0 <= valid_fraction < 1 and positives_per_chunk >= 1, got {self}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CandidateLists:
    """A recall stage's merged candidates of some users, keyed by (user_id << 32 | movie_id), sorted, with the
    `ch_*` feature values of each candidate."""

    keys: np.ndarray
    values: dict[str, np.ndarray]

    @classmethod
    def from_table(cls, table: pa.Table, channels: tuple[str, ...]) -> CandidateLists:
        keys = _pair_keys(table.column("user_id").to_numpy(), table.column("movie_id").to_numpy())
        order = np.argsort(keys, kind="stable")
        values = {}
        for c in channels:
            for kind in ("rank", "score"):
                col = f"{kind}_{c}"
                values[f"ch_{c}_{kind}"] = (_nullable(table.column(col))[order] if col in table.column_names
                                            else np.full(keys.size, np.nan))
        values["ch_merged_rank"] = _nullable(table.column("rank"))[order]
        values["ch_merged_score"] = _nullable(table.column("score"))[order]
        return cls(keys[order], values)

    @classmethod
    def empty(cls, channels: tuple[str, ...]) -> CandidateLists:
        return cls(np.zeros(0, np.int64), {name: np.zeros(0) for name in recall_feature_names(channels)})

    def lookup(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(found, {ch_* column: value or NaN}) for (user, movie) pairs."""
        found, pos = _member(self.keys, _pair_keys(user_ids, movie_ids))
        return found, {name: np.where(found, v[pos] if v.size else np.nan, np.nan) for name, v in self.values.items()}

    def of_users(self, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user_id, movie_id) of every candidate of these users."""
        users = np.asarray(user_ids, dtype=np.int64)
        u = self.keys >> 32
        take = np.isin(u, users)
        return u[take], self.keys[take] & 0xFFFFFFFF


def _nullable(column) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> nan


def _pair_keys(users: np.ndarray, movies: np.ndarray) -> np.ndarray:
    return (np.asarray(users, dtype=np.int64) << 32) | np.asarray(movies, dtype=np.int64)


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key is in `sorted_keys`, its position there)."""
    pos = np.searchsorted(sorted_keys, keys)
    pos_c = np.minimum(pos, max(sorted_keys.size - 1, 0))
    found = (pos < sorted_keys.size) & (sorted_keys[pos_c] == keys) if sorted_keys.size else np.zeros(keys.shape, bool)
    return found, pos_c


def shard_user_positions(store: SequenceStore, shard: int, n_shards: int) -> np.ndarray:
    """Store positions (sorted) of the users of shard `shard`."""
    return np.flatnonzero(shard_of(store.user_ids, n_shards) == shard).astype(np.int64)


def user_chunks(store: SequenceStore, users: np.ndarray, positives_per_chunk: int) -> list[np.ndarray]:
    """`users` cut into consecutive chunks of about `positives_per_chunk` source rows (a user is never split)."""
    if users.size == 0:
        return []
    rows = np.cumsum(np.asarray(store.indptr[users + 1] - store.indptr[users]))
    bounds = np.searchsorted(rows, np.arange(positives_per_chunk, int(rows[-1]) + positives_per_chunk,
                                             positives_per_chunk), side="right")
    edges = np.unique(np.concatenate([[0], np.minimum(bounds, users.size), [users.size]]))
    edges = edges[(edges > 0) | (np.arange(edges.size) == 0)]
    return [users[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class _Taken:
    """The (positive, movie) pairs already in a group, to refuse duplicates."""

    def __init__(self, pos_idx: np.ndarray, movies: np.ndarray):
        self.keys = np.sort(_pair_keys(pos_idx, movies))

    def accept(self, pos_idx: np.ndarray, movies: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Mask of draws to accept: `ok`, not taken, first occurrence of its key among the draws; records them."""
        keys = _pair_keys(pos_idx, np.maximum(movies, 0))
        taken, _ = _member(self.keys, keys)
        ok = ok & ~taken
        idx = np.flatnonzero(ok)
        _, first = np.unique(keys[idx], return_index=True)
        accept = np.zeros(keys.size, bool)
        accept[idx[first]] = True
        self.keys = np.sort(np.concatenate([self.keys, keys[accept]]))
        return accept


def sample_chunk(chunk: UserChunk, interacted: np.ndarray, candidates: CandidateLists, circulation: Circulation,
                 catalogue: np.ndarray, config: SamplingConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Key columns (see `KEY_COLUMNS`, plus `user_local` for the features) of the chunk's positives and their
    negatives, ordered by positive (`pos_id`), the positive first. `interacted`: sorted (user << 32 | movie)
    keys of everything the chunk's users ever rated; `catalogue`: every movie id (the fall-back draws)."""
    window_all = chunk.in_window.astype(bool)
    cutoff_all = np.where(window_all, chunk.window_start[chunk.row_user], chunk.ts)
    # a positive's cut-off must be before its user's test start (rows in the same second as the first test
    # rating — ties the splits broke by movie id — are not positives)
    rows = np.flatnonzero(cutoff_all < chunk.test_start[chunk.row_user])
    n = rows.size
    row_user = chunk.row_user[rows]
    users_raw = chunk.user_ids[row_user]
    movie_ids = chunk.movie_id[rows]
    window, cutoff = window_all[rows], cutoff_all[rows]
    k = config.negatives
    slot_user = np.repeat(np.arange(n), k)  # negative slots, k per positive (index of the positive)
    neg_movie = np.full(n * k, -1, dtype=np.int64)
    neg_source = np.zeros(n * k, dtype=np.int8)
    taken = _Taken(np.arange(n), movie_ids)

    # candidate negatives: the user's window list minus everything the user ever rated, spread over the user's
    # window positives (negative j of a user -> its (j mod k_u)-th window positive)
    win_rows = np.flatnonzero(window)
    if win_rows.size and config.candidate_negatives and candidates.keys.size:
        c_user, c_movie = candidates.of_users(np.unique(users_raw[win_rows]))
        rated, _ = _member(interacted, _pair_keys(c_user, c_movie))
        c_user, c_movie = c_user[~rated], c_movie[~rated]
        order = np.lexsort((rng.random(c_user.size), c_user))
        c_user, c_movie = c_user[order], c_movie[order]
        c_rank = np.arange(c_user.size) - np.searchsorted(c_user, c_user, side="left")  # 0.. within the user
        w_user = users_raw[win_rows]  # window rows are consecutive per user (sorted by user)
        w_first = np.searchsorted(w_user, c_user, side="left")
        w_count = np.searchsorted(w_user, c_user, side="right") - w_first
        keep = (w_count > 0) & (c_rank < w_count * config.candidate_negatives)
        positive = win_rows[(w_first + c_rank % np.maximum(w_count, 1))[keep]]
        slot_in_group = (c_rank // np.maximum(w_count, 1))[keep]
        slots = positive * k + slot_in_group
        neg_movie[slots] = c_movie[keep]
        neg_source[slots] = CANDIDATE
        taken.keys = np.sort(np.concatenate([taken.keys, _pair_keys(positive, c_movie[keep])]))

    def fill(source: int, rounds: int, draw: Callable[[np.ndarray], np.ndarray]) -> None:
        for _ in range(rounds):
            holes = np.flatnonzero(neg_movie < 0)
            if holes.size == 0:
                return
            owner = slot_user[holes]
            movies = draw(owner)
            rated, _ = _member(interacted, _pair_keys(users_raw[owner], np.maximum(movies, 0)))
            ok = taken.accept(owner, movies, (movies >= 0) & ~rated)
            neg_movie[holes[ok]] = movies[ok]
            neg_source[holes[ok]] = source

    window_s = config.negative_window_days * DAY
    fill(POPULARITY, POPULARITY_ROUNDS, lambda owner: circulation.draw(cutoff[owner], window_s, rng))
    fill(POPULARITY, POPULARITY_ROUNDS, lambda owner: circulation.draw(cutoff[owner], None, rng))  # all the past
    fill(FALLBACK, FALLBACK_ROUNDS, lambda owner: catalogue[rng.integers(0, catalogue.size, owner.size)])
    if (neg_movie < 0).any():
        bad = users_raw[slot_user[np.flatnonzero(neg_movie < 0)[0]]]
        raise ValueError(f"user {bad}: could not draw {k} negatives it never rated (it rated nearly the whole "
                         f"catalogue of {catalogue.size} movies)")

    # positives then negatives, grouped by positive
    src = np.concatenate([np.zeros(n, np.int8), neg_source])
    owner = np.concatenate([np.arange(n), slot_user])
    order = np.lexsort((src, owner))
    owner, src = owner[order], src[order]
    movie = np.concatenate([movie_ids, neg_movie])[order]
    is_pos = src == POSITIVE
    liked = (chunk.rating[rows] >= LIKED)[owner] & is_pos
    user_raw = users_raw[owner]
    in_window = window[owner]
    in_cand, _ = _member(candidates.keys, _pair_keys(user_raw, movie))
    return {
        "user_id": user_raw.astype(np.int32),
        "movie_id": movie.astype(np.int32),
        "pos_id": chunk.global_rows[rows][owner].astype(np.int64),
        "watch": is_pos.astype(np.int8),
        "like": liked.astype(np.int8),
        "neg_source": src,
        "cutoff_ts": cutoff[owner].astype(np.int64),
        "seq_pos": np.zeros(owner.size, np.int32),  # set with the features
        "in_window": in_window.astype(np.int8),
        "valid": (in_window & is_validation_user(user_raw, config.valid_fraction)).astype(np.int8),
        "in_candidates": (in_window & in_cand).astype(np.int8),
        "user_local": row_user[owner],
    }


def sample_table(chunk: UserChunk, engine: RankingFeatureEngine, interacted: np.ndarray, candidates: CandidateLists,
                 circulation: Circulation, catalogue: np.ndarray, config: SamplingConfig,
                 rng: np.random.Generator) -> pa.Table:
    """`sample_chunk` plus the feature columns (recall features on window rows only), as an Arrow table."""
    import pyarrow as pa

    cols = sample_chunk(chunk, interacted, candidates, circulation, catalogue, config, rng)
    users_local = cols.pop("user_local")
    cols["seq_pos"] = chunk.seq_pos(users_local, cols["cutoff_ts"]).astype(np.int32)
    window = cols["in_window"].astype(bool)
    channel_values = None
    if engine.channels:
        _, found_values = candidates.lookup(cols["user_id"], cols["movie_id"])
        channel_values = {name: np.where(window, v, np.nan) for name, v in found_values.items()}
    features = engine.compute(chunk, users_local, cols["movie_id"], cols["cutoff_ts"], channel_values)
    return pa.table({**{name: cols[name] for name in KEY_COLUMNS}, **features})


def write_shard(out_dir: Path, *, store: SequenceStore, engine: RankingFeatureEngine, circulation: Circulation,
                interacted: np.ndarray, candidates: CandidateLists, catalogue: np.ndarray, shard: int, n_shards: int,
                config: SamplingConfig, metadata: Mapping[str, str] | None = None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Build shard `shard` of `n_shards` into `out_dir` (a directory replaced atomically) and return its stats.

    An empty shard (no user hashes to it: tiny datasets) is a directory with one typed, empty file."""
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path

    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    users = shard_user_positions(store, shard, n_shards)
    chunks = user_chunks(store, users, config.positives_per_chunk)
    total = int((store.indptr[users + 1] - store.indptr[users]).sum()) if users.size else 0
    rng = np.random.default_rng([config.seed, shard])
    rows = positives = skipped = 0
    sources = np.zeros(4, dtype=np.int64)
    kv = {"movielens.shard": f"{shard}/{n_shards}", "movielens.sampling": str(config.to_dict()),
          **(metadata or {})}
    schema = None
    last_log = time.perf_counter()
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        writer = None
        try:
            for chunk_users in chunks:
                chunk = engine.chunk(store, chunk_users)
                table = sample_table(chunk, engine, interacted, candidates, circulation, catalogue, config, rng)
                if writer is None:
                    schema = table.schema.with_metadata({**(table.schema.metadata or {}), **kv})
                    # dictionaries only for the key columns: float features have ~as many values as rows
                    # (dictionary pages for them cost write time for little disk; docs/BENCHMARKS.md, "Ranking samples")
                    writer = pq.ParquetWriter(tmp / "part-0.parquet", schema, compression="zstd",
                                              use_dictionary=list(KEY_COLUMNS))
                assert schema is not None  # set with the writer
                writer.write_table(table.replace_schema_metadata(schema.metadata), row_group_size=256 * 1024)
                rows += table.num_rows
                positives += int(table.num_rows // (config.negatives + 1))
                skipped += int(chunk.movie_id.size) - table.num_rows // (config.negatives + 1)
                sources += np.bincount(table.column("neg_source").to_numpy(), minlength=4)[:4]
                if time.perf_counter() - last_log > 30 or positives + skipped == total:
                    dt = time.perf_counter() - start
                    say(f"shard {shard:02d}: {positives:,}/{total:,} positives, {rows:,} rows "
                        f"({rows / dt:,.0f} rows/s)")
                    last_log = time.perf_counter()
            if writer is None:  # no user in this shard: one typed, empty file
                empty = _empty_table(engine).replace_schema_metadata(kv)
                pq.write_table(empty, tmp / "part-0.parquet", compression="zstd")
        finally:
            if writer is not None:
                writer.close()
    seconds = time.perf_counter() - start
    return {"shard": shard, "users": int(users.size), "positives": positives, "rows": rows,
            "source_rows_at_test_start": skipped,
            "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 1) if seconds else 0.0,
            "negatives_by_source": {"candidate": int(sources[CANDIDATE]), "popularity": int(sources[POPULARITY]),
                                    "fallback": int(sources[FALLBACK])}}


def _empty_table(engine: RankingFeatureEngine) -> pa.Table:
    import pyarrow as pa

    types = {"user_id": pa.int32(), "movie_id": pa.int32(), "pos_id": pa.int64(), "watch": pa.int8(),
             "like": pa.int8(), "neg_source": pa.int8(), "cutoff_ts": pa.int64(), "seq_pos": pa.int32(),
             "in_window": pa.int8(), "valid": pa.int8(), "in_candidates": pa.int8()}
    fields = [pa.field(c, types[c]) for c in KEY_COLUMNS] + [pa.field(f, pa.float32()) for f in engine.feature_names]
    return pa.schema(fields).empty_table()


def check_shard(con, shard_path: Path, *, ratings: Path, test: Path, shard: int, n_shards: int, negatives: int
                ) -> dict[str, dict]:
    """The blocking rules of a shard, checked from its files alone (DuckDB): {check: {"passed": bool, ...}}.

    - positive_to_negative_ratio: every pos_id has 1 positive and `negatives` negatives;
    - no_rated_negatives: no negative is a movie its user rated at any time (`ratings`: every rating);
    - before_test_cutoff: every cut-off is before the user's first `test` rating, no positive is a test row;
    - users_in_their_shard: every user hashes to this shard (so shards are disjoint)."""
    from movielens_assets.core.data.duck import one_row, sql_str
    from movielens_assets.core.ranking.shards import shard_sql

    s = f"read_parquet({sql_str(Path(shard_path) / '*.parquet')}, hive_partitioning = false)"
    r, t = f"read_parquet({sql_str(ratings)})", f"read_parquet({sql_str(test)})"
    bad_groups, groups = one_row(con.execute(
        f"""SELECT count(*) FILTER (WHERE n <> {int(negatives) + 1} OR p <> 1), count(*)
            FROM (SELECT pos_id, count(*) AS n, sum(watch) AS p FROM {s} GROUP BY pos_id)"""))
    (rated_negatives,) = one_row(con.execute(
        f"SELECT count(*) FROM {s} x JOIN {r} y USING (user_id, movie_id) WHERE x.watch = 0"))
    (late,) = one_row(con.execute(
        f"""SELECT count(*) FROM {s} x JOIN (SELECT user_id, min(epoch(timestamp))::BIGINT AS t FROM {t} GROUP BY 1) y
            USING (user_id) WHERE x.cutoff_ts >= y.t"""))
    (test_positives,) = one_row(con.execute(
        f"SELECT count(*) FROM {s} x JOIN {t} y USING (user_id, movie_id) WHERE x.watch = 1"))
    outside, users = one_row(con.execute(
        f"""SELECT count(*) FILTER (WHERE {shard_sql('user_id', n_shards)} <> {int(shard)}), count(*)
            FROM (SELECT DISTINCT user_id FROM {s})"""))
    return {
        "positive_to_negative_ratio": {"passed": bad_groups == 0, "positives": int(groups),
                                       "groups_off_ratio": int(bad_groups), "negatives_per_positive": int(negatives)},
        "no_rated_negatives": {"passed": rated_negatives == 0, "rated_negatives": int(rated_negatives)},
        "before_test_cutoff": {"passed": late == 0 and test_positives == 0, "rows_at_or_after_test": int(late),
                               "test_rows_as_positives": int(test_positives)},
        "users_in_their_shard": {"passed": outside == 0, "users": int(users), "users_of_other_shards": int(outside)},
    }
