"""Ranking blocks, one top-level `nn.Module` family per file: MLP, DIN attention, DCN-V2 cross, MMoE.

These modules import torch at import time; Dagster-side code imports them inside functions.
"""

from movielens_assets.core.ranking.layers.cross import CrossNet, LowRankCrossNet
from movielens_assets.core.ranking.layers.din import DINAttention, MeanPooling
from movielens_assets.core.ranking.layers.mlp import MLP
from movielens_assets.core.ranking.layers.mmoe import MMoE

__all__ = ["MLP", "CrossNet", "DINAttention", "LowRankCrossNet", "MMoE", "MeanPooling"]
