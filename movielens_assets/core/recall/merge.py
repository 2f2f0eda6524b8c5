"""Merge the candidate lists of any set of channels into one de-duplicated list per user.

Input: channel name -> Arrow table (user_id, movie_id, rank (1-based), score), raw ids.
Output: Arrow table sorted by (user_id, rank) with columns
  user_id, movie_id, rank, score, channels (list of the channels that proposed the item, in channel
  order), channel_ranks (their ranks, aligned), and rank_<channel> (nullable int32) and score_<channel>
  (nullable float32, the channel's own score) per channel — the ranker's recall features.

Methods:
- `rrf`   reciprocal-rank fusion: score = sum over channels of weight_c / (rrf_k + rank_c).

A channel of weight 0 does not score or propose items, but its ranks of the items others proposed are kept
(`channels`, `channel_ranks`, `rank_<channel>`) for the ranker.
- `quota` weighted round-robin: each channel fills slots in proportion to its weight, in its own
  order; an item proposed by several channels takes the earliest slot (key = (rank_c - 1) / weight_c,
  ties by channel order), so duplicates free slots for the next items. score = 1 / (1 + key).

`merge_candidate_files` runs the same merge over the channels' candidate FILES a chunk of users at a time,
so memory stays bounded at any scale (the pipeline's `recall_candidates`).

`tune_rrf_weights` picks channel weights on a VALIDATION target (never the test rows): the pipeline scores
merges of each protocol's window-stage lists against its window rows (`RankMatrix`), accepting a move away
from equal weights only when it is significant over users (docs/RANKING.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

METHODS = ("rrf", "quota")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def merge_candidates(
    channels: Mapping[str, pa.Table],
    *,
    method: str = "rrf",
    size: int = 200,
    weights: Mapping[str, float] | None = None,
    rrf_k: float = 60.0,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    import duckdb

    if method not in METHODS:
        raise ValueError(f"merge method must be one of {METHODS}, got {method!r}")
    if not channels:
        raise ValueError("no channel to merge")
    names = list(channels)
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"channel names are lower-case identifiers, got {name!r}")
    raw_w = {n: float((weights or {}).get(n, 1.0)) for n in names}
    if any(v < 0 for v in raw_w.values()) or not sum(raw_w.values()) > 0:
        raise ValueError(f"channel weights must be >= 0 with a positive sum, got {raw_w}")
    total = sum(raw_w.values())
    w = {n: raw_w[n] / total for n in names}
    own = con is None
    con = con or duckdb.connect()
    try:
        parts = []
        for order, name in enumerate(names):
            view = f"_ch_{name}"
            con.register(view, channels[name])
            parts.append(
                f"SELECT {order} AS ch, '{name}' AS channel, user_id::BIGINT AS user_id, movie_id::BIGINT AS movie_id, "
                f"rank::INTEGER AS rank, score::DOUBLE AS ch_score, {w[name]!r}::DOUBLE AS w FROM {view}"
            )
        if method == "rrf":
            score, tie = f"sum(w * {len(names)} / ({float(rrf_k)!r} + rank))", "min(ch)"
        else:
            score = "1.0 / (1.0 + min((rank - 1) / w) FILTER (WHERE w > 0))"
            # the channel of the earliest slot; equal slots go to the first channel (arg_min would pick any)
            tie = "(min({'k': (rank - 1) / w, 'c': ch}) FILTER (WHERE w > 0)).c"
        per_channel = ", ".join(f"min(rank) FILTER (WHERE ch = {i})::INTEGER AS rank_{n}, "
                                f"min(ch_score) FILTER (WHERE ch = {i})::FLOAT AS score_{n}"
                                for i, n in enumerate(names))
        query = f"""
            WITH c AS ({' UNION ALL '.join(parts)}),
            agg AS (
                SELECT user_id, movie_id, {score} AS score, {tie} AS tie,
                       list(channel ORDER BY ch) AS channels, list(rank ORDER BY ch) AS channel_ranks,
                       {per_channel}
                FROM c GROUP BY user_id, movie_id
                HAVING max(w) > 0  -- proposed by a weighted channel (a weight of 0 only keeps provenance)
            ),
            ranked AS (
                SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY score DESC, tie, movie_id) AS rank
                FROM agg
            )
            SELECT user_id::INTEGER AS user_id, movie_id::INTEGER AS movie_id, rank::INTEGER AS rank,
                   score::FLOAT AS score, channels, channel_ranks,
                   {', '.join(f'rank_{n}, score_{n}' for n in names)}
            FROM ranked WHERE rank <= {int(size)} ORDER BY user_id, rank
        """
        table = con.sql(query).to_arrow_table()
        for name in names:
            con.unregister(f"_ch_{name}")
        return table
    finally:
        if own:
            con.close()


MERGE_USERS_PER_CHUNK = 5_000
"""Users merged at a time by `merge_candidate_files`: at 200 candidates per channel and 4 channels, 4M input
rows. On synthetic-32m's last_n lists a chunk of 5,000 users peaks far lower than one of 20,000 (DuckDB's
aggregate with the provenance lists) at the same users/s, and all users at once did not fit in memory
(docs/BENCHMARKS.md, "The whole pipeline at 32M ratings")."""


def merge_candidate_files(
    paths: Mapping[str, str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    users_per_chunk: int = MERGE_USERS_PER_CHUNK,
    con: duckdb.DuckDBPyConnection | None = None,
    **merge_kwargs,
) -> int:
    """`merge_candidates` over channel candidate FILES (Parquet, user_id, movie_id, rank, score), a chunk of
    users at a time, appended to one Parquet file at `out_path` (written atomically); returns its row count.

    Memory is bounded by one chunk: each channel file is read for the chunk's user range only (the files
    are sorted by user, so the row-group statistics skip the rest), instead of every channel's whole list
    at once (at 32M ratings 4 x 40M rows, then a 160M-row aggregate). The result equals
    `merge_candidates` on the whole tables: the merge is per user."""
    import duckdb
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path
    from movielens_assets.core.data.duck import sql_str

    if users_per_chunk < 1:
        raise ValueError(f"users_per_chunk must be >= 1, got {users_per_chunk}")
    if not paths:
        raise ValueError("no channel to merge")
    own = con is None
    con = con or duckdb.connect()
    try:
        sources = {name: f"read_parquet({sql_str(str(p))})" for name, p in paths.items()}
        users = con.sql(" UNION ".join(f"SELECT DISTINCT user_id FROM {src}" for src in sources.values())
                        + " ORDER BY user_id").fetchnumpy()["user_id"]
        starts = list(range(0, users.size, users_per_chunk)) or [0]
        rows = 0
        with atomic_path(out_path) as tmp:
            writer = None
            try:
                for s in starts:
                    chunk = users[s : s + users_per_chunk]
                    where = "" if chunk.size == 0 else f"WHERE user_id BETWEEN {int(chunk[0])} AND {int(chunk[-1])}"
                    tables = {
                        name: con.sql(f"SELECT user_id, movie_id, rank, score FROM {src} {where}").to_arrow_table()
                        for name, src in sources.items()
                    }
                    merged = merge_candidates(tables, con=con, **merge_kwargs)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, merged.schema, compression="zstd")
                    writer.write_table(merged)
                    rows += merged.num_rows
            finally:
                if writer is not None:
                    writer.close()
        return rows
    finally:
        if own:
            con.close()


@dataclass(frozen=True)
class RankMatrix:
    """Every (user, item) pair any channel proposed to the tuning users, with each channel's rank: built once,
    so that an RRF merge under any weights is a few NumPy passes (no DuckDB merge per trial)."""

    channels: tuple[str, ...]
    user: np.ndarray  # int64 position of the pair's user in `users`, pairs sorted by user
    item: np.ndarray  # int64 raw movie id
    ranks: np.ndarray  # float64 (n_pairs, n_channels); inf where the channel did not propose the item
    relevant: np.ndarray  # bool: the pair is one of the user's target rows
    n_rel: np.ndarray  # int64 per user: its target rows (items no channel proposed count as misses)

    @classmethod
    def build(cls, channels: Mapping[str, pa.Table], users: np.ndarray, target_users: np.ndarray,
              target_items: np.ndarray) -> RankMatrix:
        """`channels`: name -> (user_id, movie_id, rank) tables; `users` the tuning users (raw ids, sorted
        unique); the target rows (`target_users`, `target_items`) of those users are the relevant items."""
        users = np.asarray(users, dtype=np.int64)
        names = tuple(channels)
        pos, ch, item, rank = [], [], [], []
        for c, name in enumerate(names):
            t = channels[name]
            u = t.column("user_id").to_numpy().astype(np.int64)
            p = np.searchsorted(users, u)
            ok = (p < users.size) & (users[np.minimum(p, max(users.size - 1, 0))] == u) if users.size else p < 0
            pos.append(p[ok])
            item.append(t.column("movie_id").to_numpy().astype(np.int64)[ok])
            rank.append(t.column("rank").to_numpy().astype(np.float64)[ok])
            ch.append(np.full(int(ok.sum()), c, dtype=np.int64))
        pos_a, item_a = np.concatenate(pos or [np.zeros(0, np.int64)]), np.concatenate(item or [np.zeros(0, np.int64)])
        span = int(max(item_a.max(initial=0), np.max(target_items, initial=0))) + 1
        keys, inverse = np.unique(pos_a * span + item_a, return_inverse=True)
        ranks = np.full((keys.size, len(names)), np.inf)
        ranks[inverse, np.concatenate(ch or [np.zeros(0, np.int64)])] = np.concatenate(rank or [np.zeros(0)])
        tp = np.searchsorted(users, np.asarray(target_users, dtype=np.int64))
        tok = (tp < users.size) & (users[np.minimum(tp, max(users.size - 1, 0))] == target_users) if users.size \
            else tp < 0
        target_keys = np.unique(tp[tok] * span + np.asarray(target_items, dtype=np.int64)[tok])
        n_rel = np.bincount(target_keys // span, minlength=users.size).astype(np.int64)
        return cls(names, keys // span, keys % span, ranks, np.isin(keys, target_keys), n_rel)

    @property
    def n_users(self) -> int:
        return int(self.n_rel.size)

    @cached_property
    def _rivals(self) -> tuple[np.ndarray, np.ndarray]:
        """For every relevant pair, every pair of the same user: (relevant pair, other pair) index arrays. A
        relevant item's position in a merged list = how many of its user's pairs rank before it, so only
        these comparisons are needed (a few thousand per user instead of sorting every list per trial)."""
        rel = np.flatnonzero(self.relevant)
        starts = np.searchsorted(self.user, np.arange(self.n_users), side="left")
        ends = np.searchsorted(self.user, np.arange(self.n_users), side="right")
        lengths = (ends - starts)[self.user[rel]]
        mine = np.repeat(rel, lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return mine, np.repeat(starts[self.user[rel]], lengths) + offsets

    def recall(self, weights: Mapping[str, float], *, rrf_k: float = 60.0, ks: Sequence[int] = (20, 100)
               ) -> np.ndarray:
        """Per-user Recall@k (float64 [n_users, len(ks)]) of the RRF merge under `weights`, ordered as
        `merge_candidates` orders it (score, then the first proposing channel, then movie_id)."""
        w = np.array([float(weights.get(c, 0.0)) for c in self.channels])
        proposed = np.isfinite(self.ranks) & (w > 0)[None, :]
        valid = proposed.any(axis=1)  # only weighted channels propose (weight 0 keeps provenance only)
        score = (np.where(np.isfinite(self.ranks), 1.0 / (rrf_k + self.ranks), 0.0) * w).sum(axis=1)
        tie = np.argmax(proposed, axis=1)
        mine, other = self._rivals
        before = valid[other] & ((score[other] > score[mine]) | (score[other] == score[mine]) & (
            (tie[other] < tie[mine]) | (tie[other] == tie[mine]) & (self.item[other] < self.item[mine])))
        position = np.bincount(mine, weights=before, minlength=self.item.size)
        out = np.zeros((self.n_users, len(ks)))
        denominator = np.maximum(self.n_rel, 1)
        for j, k in enumerate(ks):
            hit = self.relevant & valid & (position < k)
            out[:, j] = np.bincount(self.user[hit], minlength=self.n_users) / denominator
        return out


TUNE_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def _gain(new: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-user gain at the deepest k (the first k when nothing differs there)."""
    d = new[:, -1] - cur[:, -1]
    if not d.any():
        d = new[:, 0] - cur[:, 0]
    n = d.size
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return float(d.mean()) if n else 0.0, se


def tune_rrf_weights(
    matrix: RankMatrix,
    *,
    grid: Sequence[float] = TUNE_GRID,
    rounds: int = 2,
    z: float = 2.0,
    rrf_k: float = 60.0,
    ks: Sequence[int] = (20, 100),
) -> dict:
    """RRF channel weights for the users of `matrix`, shrunk toward equal weights (docs/RANKING.md).

    Coordinate ascent from equal weights over `grid`: within a channel the best value whose gain in mean
    Recall@max(ks) over the current weights exceeds `z` paired standard errors (over users) is kept, else
    nothing moves. Then each channel alone (the merged list = that channel's list) replaces the result
    when it beats it by the same rule. Returns {"weights", "users", "recall@k" (window means), "equal",
    "single" (each channel alone), "trace" (the accepted moves with gain and standard error)}."""
    names = matrix.channels

    def mean(m: np.ndarray) -> dict[str, float]:
        return {f"recall@{k}": round(float(m[:, j].mean()), 6) if m.size else 0.0 for j, k in enumerate(ks)}

    weights = {c: 1.0 for c in names}
    current = matrix.recall(weights, rrf_k=rrf_k, ks=ks)
    equal = mean(current)
    trace: list[dict] = [{"weights": dict(weights), **equal}]
    for _ in range(rounds):
        moved = False
        for name in names:
            best = None
            for value in grid:
                trial = {**weights, name: float(value)}
                if value == weights[name] or not sum(trial.values()) > 0:
                    continue
                m = matrix.recall(trial, rrf_k=rrf_k, ks=ks)
                gain, se = _gain(m, current)
                if gain > 0 and gain > z * se and (best is None or gain > best[2]):
                    best = (trial, m, gain, se)
            if best is not None:
                weights, current = best[0], best[1]
                trace.append({"weights": dict(weights), **mean(current), "gain": round(best[2], 6),
                              "se": round(best[3], 6)})
                moved = True
        if not moved:
            break
    single: dict[str, dict[str, float]] = {}
    best_single = None
    for name in names:
        alone = {c: float(c == name) for c in names}
        m = matrix.recall(alone, rrf_k=rrf_k, ks=ks)
        single[name] = mean(m)
        gain, se = _gain(m, current)
        if gain > 0 and gain > z * se and (best_single is None or gain > best_single[2]):
            best_single = (alone, m, gain, se)
    if best_single is not None:
        weights, current = best_single[0], best_single[1]
        trace.append({"weights": dict(weights), **mean(current), "gain": round(best_single[2], 6),
                      "se": round(best_single[3], 6), "single_channel": True})
    return {"weights": weights, "users": matrix.n_users, **mean(current), "equal": equal, "single": single,
            "trace": trace, "z": z, "grid": list(grid)}
