"""Partitions of the asset graph: the user shards of the ranking samples (`core/ranking/shards.py`)."""

import dagster as dg

from movielens_assets.core.ranking.shards import shard_keys


def ranking_shards(n_shards: int) -> dg.StaticPartitionsDefinition:
    """Keys `00` … of `n_shards` user shards (`MOVIELENS_RANKING_SHARDS`); a user's shard is a stable hash of
    its id, so every shard can be built, rebuilt or checked alone."""
    return dg.StaticPartitionsDefinition(shard_keys(n_shards))
