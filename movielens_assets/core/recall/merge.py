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

`tune_weights` picks channel weights by coordinate ascent on a VALIDATION target (never the test rows):
the pipeline scores merges of the channels' lists for global_time's valid users.
"""

from __future__ import annotations

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
            tie = "arg_min(ch, (rank - 1) / w) FILTER (WHERE w > 0)"
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
