"""The two-tower model's towers (`TwoTower` = `UserTower` + `ItemTower`): module-level nn.Modules.

Built by `two_tower._build_model` (and directly by tests); `two_tower` imports this module inside its functions
only, so importing the channel does not import torch. Parameters are created in a fixed order (user tower, then
item tower; within each, the order of `__init__`): that order consumes the torch RNG, so it fixes the initial
weights and the `state_dict` keys of saved checkpoints. See `two_tower`'s docstring for the architecture.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from movielens_assets.core.recall.two_tower import TwoTowerConfig


class UserTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, n_users: int, n_items: int) -> None:
        super().__init__()
        D, H = config.dim, config.hidden
        sparse = config.sparse_embeddings
        self.user_emb = nn.Embedding(n_users, D, sparse=sparse) if config.user_id_embedding else None
        self.hist_emb = nn.Embedding(n_items + 1, D, sparse=sparse)  # row n_items = padding (masked anyway)
        self.recency = config.pooling == "mean_recency"
        if config.pooling not in ("mean", "mean_recency"):
            raise ValueError(f"unknown pooling {config.pooling!r}")
        if self.recency:  # log-weight per age (0 = most recent item), init geometric decay
            init = torch.arange(config.history_len, dtype=torch.float32) * math.log(config.recency_init)
            self.age_logits = nn.Parameter(init)
        width = D * (int(config.user_id_embedding) + 1 + int(self.recency)) + 2
        self.mlp = nn.Sequential(nn.Linear(width, H), nn.ReLU(), nn.Linear(H, D))
        if self.user_emb is not None:
            nn.init.normal_(self.user_emb.weight, std=0.05)
        nn.init.normal_(self.hist_emb.weight, std=0.05)

    def pooled_history(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked mean of the history embeddings: sum / real count (empty history -> zeros)."""
        return self._pool(self.hist_emb(hist), self._mean_weights(mask).unsqueeze(1))[:, 0]

    def recency_pooled_history(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked weighted mean with weight exp(age_logits[age]), age = number of REAL entries after the
        entry (0 = the most recent). Ages are counted on the mask, so the result does not depend on where
        or how much padding there is (entries oldest first); empty history -> zeros."""
        return self._pool(self.hist_emb(hist), self._recency_weights(mask).unsqueeze(1))[:, 0]

    def _mean_weights(self, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(self.hist_emb.weight.dtype)
        return m / m.sum(dim=1, keepdim=True).clamp(min=1.0)

    def _recency_weights(self, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(self.hist_emb.weight.dtype)
        after = m.flip(1).cumsum(1).flip(1) - m  # real entries strictly after each position
        age = after.long().clamp(max=self.age_logits.numel() - 1)  # older than the table: its last weight
        w = torch.exp(self.age_logits[age]) * m  # padding -> weight 0
        return w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)

    @staticmethod
    def _pool(emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """[B, P, L] weights x [B, L, D] embeddings -> [B, P, D] (one batched matmul for all poolings)."""
        return torch.bmm(weights, emb)

    def forward(self, users, hist, mask, profile):
        weights = [self._mean_weights(mask)]
        if self.recency:
            weights.append(self._recency_weights(mask))
        pooled = self._pool(self.hist_emb(hist), torch.stack(weights, dim=1)).flatten(1)  # [B, P * D]
        parts = [] if self.user_emb is None else [self.user_emb(users)]
        return nn.functional.normalize(self.mlp(torch.cat([*parts, pooled, profile], dim=1)), dim=1)


class ItemTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, n_items: int, n_genres: int, sem_dim: int) -> None:
        super().__init__()
        D, H = config.dim, config.hidden
        sparse = config.sparse_embeddings
        self.item_emb = nn.Embedding(n_items, D, sparse=sparse)
        self.genre_emb = nn.Embedding(max(n_genres, 1), D)
        self.year_emb = nn.Embedding(config.n_year_buckets + 1, D // 4 or 1)
        self.sem_proj = nn.Linear(sem_dim, D) if sem_dim else None
        width = 2 * D + (D // 4 or 1) + 1 + (D if sem_dim else 0)
        self.mlp = nn.Sequential(nn.Linear(width, H), nn.ReLU(), nn.Linear(H, D))
        nn.init.normal_(self.item_emb.weight, std=0.05)
        nn.init.normal_(self.genre_emb.weight, std=0.05)

    def forward(self, items, genres, year_bucket, log_pop, sem):
        # masked mean of the genre embeddings: multi-hot @ E / number of genres (0 genres -> zeros)
        g = genres.to(self.genre_emb.weight.dtype)
        genre_vec = (g @ self.genre_emb.weight) / g.sum(dim=1, keepdim=True).clamp(min=1.0)
        parts = [self.item_emb(items), genre_vec, self.year_emb(year_bucket), log_pop.unsqueeze(1)]
        if self.sem_proj is not None:
            parts.append(self.sem_proj(sem))
        return nn.functional.normalize(self.mlp(torch.cat(parts, dim=1)), dim=1)


class TwoTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, n_users: int, n_items: int, n_genres: int, sem_dim: int) -> None:
        super().__init__()
        self.user_tower = UserTower(config, n_users, n_items)
        self.item_tower = ItemTower(config, n_items, n_genres, sem_dim)
