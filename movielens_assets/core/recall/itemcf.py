"""ItemCF channel: item-item similarity from weighted co-occurrence, top-N neighbours per item.

Build (compiled item-major loop, `kernels.itemcf_neighbours`; memory O(ratings + threads x items)):
- each user's history is truncated to the last `max_history` items (heavy users do not dominate,
  and their pair count stays bounded);
- within a history, item pairs at most `window` positions apart co-occur (both directions);
- a pair contributes `w_u * decay`, with `w_u = 1 / log(1 + n_u)` (inverse user activity, `n_u` the
  user's full history length) and `decay = 1 / (1 + |dt| / time_decay_days)` (pairs close in time
  count more; `time_decay_days=None` disables it);
- similarity = C(i, j) / sqrt(W_i * W_j) with `W_i` the summed user weights of item i (cosine);
- only the `n_neighbors` most similar items per item are kept (dense [n_items, N] arrays, -1 padded;
  ties by the smaller item index).

Recommend (batch, `kernels.neighbour_topk`): score(u, j) = sum over the user's `n_recent` latest items h of
`recency ** age(h) * sim(h, j)`; only items reached through a neighbour are candidates; training items
excluded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.recall.base import BaseRecall, Interactions


@dataclass(frozen=True)
class ItemCFParams:
    max_history: int = 200
    window: int = 50
    time_decay_days: float | None = 30.0
    n_neighbors: int = 100
    n_recent: int = 20
    recency: float = 0.9


def _positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges starts[i] .. starts[i]+lengths[i]-1, without a Python loop."""
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


class ItemCFRecall(BaseRecall):
    name = "itemcf"

    def __init__(self, params: ItemCFParams | None = None, **overrides):
        self.params = params or ItemCFParams(**overrides)
        self.nbr_idx: np.ndarray | None = None
        self.nbr_sim: np.ndarray | None = None
        self.train: Interactions | None = None

    # -- build ---------------------------------------------------------------------------------
    def fit(self, train: Interactions) -> ItemCFRecall:
        from movielens_assets.core.recall.kernels import itemcf_neighbours

        p, n_items = self.params, train.n_items
        lengths = np.diff(train.indptr)
        user_w = 1.0 / np.log1p(np.maximum(lengths, 1))
        kept = np.minimum(lengths, p.max_history)
        pos = _positions(train.indptr[1:] - kept, kept)  # the last `max_history` rows of each user
        items = train.items[pos]
        item_w = np.bincount(items, weights=np.repeat(user_w, kept), minlength=n_items)
        u_end = np.cumsum(kept)
        self.nbr_idx, self.nbr_sim = itemcf_neighbours(
            items, train.timestamps[pos], u_end - kept, u_end, user_w, item_w, p.window,
            p.time_decay_days * 86400.0 if p.time_decay_days else None, p.n_neighbors)
        self.train = train
        return self

    # -- recommend -----------------------------------------------------------------------------
    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from movielens_assets.core.recall.kernels import neighbour_topk

        assert self.nbr_idx is not None and self.nbr_sim is not None and self.train is not None, "fit first"
        weights = np.float64(self.params.recency) ** np.arange(self.params.n_recent)
        return neighbour_topk(users, self.train.indptr, self.train.items, self.nbr_idx, self.nbr_sim, weights, k)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        assert self.nbr_idx is not None and self.nbr_sim is not None, "fit first"
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / "neighbors.npy", self.nbr_idx)
            np.save(tmp / "similarities.npy", self.nbr_sim)
            (tmp / "params.json").write_text(json.dumps(asdict(self.params), indent=2))

    @classmethod
    def load(cls, directory: Path, train: Interactions) -> ItemCFRecall:
        saved = json.loads((directory / "params.json").read_text())
        known = {f.name for f in fields(ItemCFParams)}  # tuning knobs of older builds are ignored
        model = cls(ItemCFParams(**{k: v for k, v in saved.items() if k in known}))
        model.nbr_idx = np.load(directory / "neighbors.npy")
        model.nbr_sim = np.load(directory / "similarities.npy")
        model.train = train
        return model
