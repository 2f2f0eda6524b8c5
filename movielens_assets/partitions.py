"""Partitions of the asset graph: the user shards of the ranking samples (`core/ranking/shards.py`)."""

import dagster as dg

from movielens_assets.core.ranking.shards import shard_keys
from movielens_assets.settings import default


def ranking_shards(n_shards: int) -> dg.StaticPartitionsDefinition:
    """Keys `00` … of `n_shards` user shards (`MOVIELENS_RANKING_SHARDS`); a user's shard is a stable hash of
    its id, so every shard can be built, rebuilt or checked alone."""
    return dg.StaticPartitionsDefinition(shard_keys(n_shards))


class RankingShards(dg.ConfigurableResource):
    """How many user shards the ranking samples have (`MOVIELENS_RANKING_SHARDS`): what the unpartitioned
    assets downstream of `ranking_samples` expect to find."""

    shards: int = default("ranking_shards")

    def partition_keys(self) -> list[str]:
        return shard_keys(self.shards)
