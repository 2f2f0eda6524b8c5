"""User shards: which shard a user's ranking samples live in, as a stable hash of the raw user id.

`shard = (h * n_shards) >> 32` with `h = (user_id * 2654435761) mod 2^32` (Knuth's multiplicative hash, reduced
to a shard by its HIGH bits — its low bits only permute `user_id mod 2^k`): the same in NumPy
(`shard_of`) and in DuckDB SQL (`shard_sql`), independent of the Python process (never `hash()`), so a shard's
users can be selected inside a Parquet scan and any reader can re-check a file's shard from its user ids.
A second, independent hash (`VALID_MULTIPLIER`) picks the held-out validation users of the ranker.
"""

from __future__ import annotations

import numpy as np

MULTIPLIER = 2654435761
VALID_MULTIPLIER = 2246822519  # an independent multiplier: validation users are spread over every shard
MAX_SHARDS = 1000


def shard_keys(n_shards: int) -> list[str]:
    """Partition keys `00`, `01`, ... zero-padded to a common width (3 digits from 101 shards on)."""
    if not 1 <= int(n_shards) <= MAX_SHARDS:
        raise ValueError(f"the number of ranking shards must be in 1..{MAX_SHARDS}, got {n_shards}")
    width = max(2, len(str(int(n_shards) - 1)))
    return [f"{i:0{width}d}" for i in range(int(n_shards))]


def parse_shard_key(key: str, n_shards: int) -> int:
    """The shard index of a partition key; ValueError naming the valid keys otherwise."""
    keys = shard_keys(n_shards)
    if key not in keys:
        raise ValueError(f"unknown ranking shard {key!r}: the {n_shards} shards are {keys[0]} … {keys[-1]}")
    return keys.index(key)


def _hash(user_ids: np.ndarray, multiplier: int) -> np.ndarray:
    u = np.asarray(user_ids).astype(np.uint64)
    return (u * np.uint64(multiplier)) & np.uint64(0xFFFFFFFF)


def shard_of(user_ids: np.ndarray, n_shards: int) -> np.ndarray:
    """Shard index (int64) of each raw user id."""
    return ((_hash(user_ids, MULTIPLIER) * np.uint64(n_shards)) >> np.uint64(32)).astype(np.int64)


def shard_sql(column: str, n_shards: int) -> str:
    """The same hash as a DuckDB expression over an integer column."""
    return (f"((((({column})::UBIGINT * {MULTIPLIER}::UBIGINT) % 4294967296::UBIGINT) * {int(n_shards)}::UBIGINT)"
            " // 4294967296::UBIGINT)")


def is_validation_user(user_ids: np.ndarray, fraction: float) -> np.ndarray:
    """True for the users held out for the ranker's validation (about `fraction` of them, stable)."""
    return _hash(user_ids, VALID_MULTIPLIER).astype(np.float64) < fraction * 2.0**32
