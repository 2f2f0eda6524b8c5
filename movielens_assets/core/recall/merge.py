"""Merge the candidate lists of any set of channels into one de-duplicated list per user.

Input: channel name -> Arrow table (user_id, movie_id, rank (1-based), score), raw ids.
Output: Arrow table sorted by (user_id, rank) with columns
  user_id, movie_id, rank, score, channels (list of the channels that proposed the item, in channel
  order), channel_ranks (their ranks, aligned), and rank_<channel> (nullable int32) per channel.

Methods:
- `rrf`   reciprocal-rank fusion: score = sum over channels of weight_c / (rrf_k + rank_c).
- `quota` weighted round-robin: each channel fills slots in proportion to its weight, in its own
  order; an item proposed by several channels takes the earliest slot (key = (rank_c - 1) / weight_c,
  ties by channel order), so duplicates free slots for the next items. score = 1 / (1 + key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
            score, tie = "1.0 / (1.0 + min((rank - 1) / w))", "arg_min(ch, (rank - 1) / w)"
        per_channel = ", ".join(f"min(rank) FILTER (WHERE ch = {i})::INTEGER AS rank_{n}" for i, n in enumerate(names))
        query = f"""
            WITH c AS ({' UNION ALL '.join(parts)}),
            agg AS (
                SELECT user_id, movie_id, {score} AS score, {tie} AS tie,
                       list(channel ORDER BY ch) AS channels, list(rank ORDER BY ch) AS channel_ranks,
                       {per_channel}
                FROM c GROUP BY user_id, movie_id
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
