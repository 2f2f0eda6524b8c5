"""User shards: the same stable hash in NumPy and DuckDB, balanced, keys and errors."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from movielens_assets.core.ranking.shards import (
    is_validation_user,
    parse_shard_key,
    shard_keys,
    shard_of,
    shard_sql,
)


def test_numpy_and_sql_agree_and_shards_are_balanced():
    users = np.arange(1, 50_001)
    shards = shard_of(users, 16)
    (sql,) = duckdb.execute(f"SELECT list({shard_sql('u', 16)} ORDER BY u) FROM range(1, 50001) t(u)").fetchone()
    assert np.array_equal(np.asarray(sql), shards)
    counts = np.bincount(shards, minlength=16)
    assert counts.min() > 0.95 * counts.mean() and counts.max() < 1.05 * counts.mean()
    # not simply user_id mod n: consecutive ids spread over shards in no fixed cycle
    assert len({tuple(shards[i : i + 16]) for i in range(0, 160, 16)}) > 1


def test_keys_are_zero_padded_and_validated():
    assert shard_keys(16)[:3] == ["00", "01", "02"] and shard_keys(16)[-1] == "15"
    assert shard_keys(101)[0] == "000" and len(shard_keys(1)) == 1
    assert parse_shard_key("07", 16) == 7
    with pytest.raises(ValueError, match="unknown ranking shard '16'.*00 … 15"):
        parse_shard_key("16", 16)
    with pytest.raises(ValueError, match="1..1000"):
        shard_keys(0)


def test_validation_users_are_a_stable_fraction_independent_of_shards():
    users = np.arange(1, 100_001)
    valid = is_validation_user(users, 0.1)
    assert 0.095 < valid.mean() < 0.105
    assert np.array_equal(valid, is_validation_user(users, 0.1))
    per_shard = [valid[shard_of(users, 8) == s].mean() for s in range(8)]
    assert max(per_shard) - min(per_shard) < 0.02
