"""Merge the candidate lists of any set of channels into one de-duplicated list per user.

Input: channel name -> Arrow table (user_id, movie_id, rank (1-based), score), raw ids.
Output: Arrow table sorted by (user_id, rank) with columns
  user_id, movie_id, rank, score, channels (list of the channels that proposed the item, in channel
  order), channel_ranks (their ranks, aligned), and rank_<channel> (nullable int32) per channel.

Methods:
- `rrf`   reciprocal-rank fusion: score = sum over channels of weight_c / (rrf_k + rank_c).

A channel of weight 0 does not score or propose items, but its ranks of the items others proposed are kept
(`channels`, `channel_ranks`, `rank_<channel>`) for the ranker.
- `quota` weighted round-robin: each channel fills slots in proportion to its weight, in its own
  order; an item proposed by several channels takes the earliest slot (key = (rank_c - 1) / weight_c,
  ties by channel order), so duplicates free slots for the next items. score = 1 / (1 + key).

`merge_candidate_files` runs the same merge over the channels' candidate FILES a chunk of users at a time,
so memory stays bounded at any scale (the pipeline's `recall_candidates`).

`tune_weights` picks channel weights by coordinate ascent on a VALIDATION target (never the test rows):
the pipeline scores merges of the channels' lists for global_time's valid users.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

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
                f"rank::INTEGER AS rank, {w[name]!r}::DOUBLE AS w FROM {view}"
            )
        if method == "rrf":
            score, tie = f"sum(w * {len(names)} / ({float(rrf_k)!r} + rank))", "min(ch)"
        else:
            score = "1.0 / (1.0 + min((rank - 1) / w) FILTER (WHERE w > 0))"
            # the channel of the earliest slot; equal slots go to the first channel (arg_min would pick any)
            tie = "(min({'k': (rank - 1) / w, 'c': ch}) FILTER (WHERE w > 0)).c"
        per_channel = ", ".join(f"min(rank) FILTER (WHERE ch = {i})::INTEGER AS rank_{n}" for i, n in enumerate(names))
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
                   score::FLOAT AS score, channels, channel_ranks, {', '.join(f'rank_{n}' for n in names)}
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
rows. Measured on synthetic-32m's last_n lists: one chunk of 5,000 users peaks at 2.3 GB (DuckDB's aggregate
with the provenance lists), 20,000 users at 9.0 GB, at the same users/s; the whole 200,948 users at once went
past 23 GB (docs/BENCHMARKS.md)."""


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
                    tables = {name: con.sql(f"SELECT user_id, movie_id, rank, score FROM {src} {where}").to_arrow_table()
                              for name, src in sources.items()}
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


def tune_weights(
    channels: Mapping[str, pa.Table],
    score: Callable[[pa.Table], tuple[float, ...]],
    *,
    grid: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    rounds: int = 2,
    **merge_kwargs,
) -> tuple[dict[str, float], tuple[float, ...], list[dict]]:
    """Channel weights maximising `score(merged)` (a tuple compared lexicographically, e.g. (Recall@100,
    Recall@20) on validation rows), by coordinate ascent from equal weights over `grid`, `rounds` passes
    over the channels in order; a change is kept only when it strictly improves the score. Returns
    (weights, best score, trace of the accepted steps)."""
    weights = {name: 1.0 for name in channels}
    best = score(merge_candidates(channels, weights=weights, **merge_kwargs))
    trace = [{"weights": dict(weights), "score": list(best)}]
    for _ in range(rounds):
        improved = False
        for name in channels:
            for value in grid:
                trial = {**weights, name: float(value)}
                if value == weights[name] or not sum(trial.values()) > 0:
                    continue
                s = score(merge_candidates(channels, weights=trial, **merge_kwargs))
                if s > best:
                    best, weights, improved = s, trial, True
                    trace.append({"weights": dict(weights), "score": list(best)})
        if not improved:
            break
    return weights, best, trace
