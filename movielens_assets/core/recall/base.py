"""The contract shared by every recall channel: one id mapping, one training-data layout, one batch call.

- `IdMap` maps raw MovieLens ids <-> contiguous indices. It is built ONCE from the training data of a
  split and used by every channel (the earlier system mixed raw and internal ids between channels).
- `Interactions` is the training data in that index space, grouped by user (CSR: `indptr`, `items`,
  plus aligned `ratings` and `timestamps`, each user's rows sorted by time).
- `BaseRecall.recommend(users, k)` is a BATCH call: many user indices in, top-k item indices and scores
  out, with every item the user interacted with in training excluded — the same rule for every channel
  (`exclude_seen_` below states that rule in numpy; the compiled batch kernels in `kernels.py` apply the
  same rule and are tested against it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class IdMap:
    """Sorted raw ids; the index of a raw id is its position."""

    user_ids: np.ndarray  # int64, sorted, unique
    item_ids: np.ndarray  # int64, sorted, unique

    @classmethod
    def from_train(cls, user_ids: np.ndarray, item_ids: np.ndarray) -> IdMap:
        return cls(np.unique(np.asarray(user_ids, dtype=np.int64)), np.unique(np.asarray(item_ids, dtype=np.int64)))

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    @staticmethod
    def _lookup(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        pos = np.searchsorted(sorted_ids, raw)
        pos_clipped = np.minimum(pos, max(sorted_ids.size - 1, 0))
        found = ((pos < sorted_ids.size) & (sorted_ids[pos_clipped] == raw) if sorted_ids.size
                 else np.zeros(raw.shape, bool))
        return np.where(found, pos_clipped, -1).astype(np.int32)

    def user_index(self, raw_user_ids: np.ndarray) -> np.ndarray:
        """Indices of raw user ids; -1 for users unknown in training."""
        return self._lookup(self.user_ids, raw_user_ids)

    def item_index(self, raw_item_ids: np.ndarray) -> np.ndarray:
        """Indices of raw movie ids; -1 for items unknown in training."""
        return self._lookup(self.item_ids, raw_item_ids)

    def user_raw(self, idx: np.ndarray) -> np.ndarray:
        return self.user_ids[np.asarray(idx)]

    def item_raw(self, idx: np.ndarray) -> np.ndarray:
        """Raw movie ids of indices; -1 padding stays -1."""
        idx = np.asarray(idx)
        return np.where(idx >= 0, self.item_ids[np.maximum(idx, 0)], -1)

    def save(self, directory: Path) -> None:
        """Write `users.npy` / `items.npy` into `directory` (atomically, as a whole)."""
        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / "users.npy", self.user_ids)
            np.save(tmp / "items.npy", self.item_ids)

    @classmethod
    def load(cls, directory: Path) -> IdMap:
        return cls(np.load(directory / "users.npy"), np.load(directory / "items.npy"))


@dataclass(frozen=True)
class Interactions:
    """Training interactions in index space, grouped by user, each user's rows sorted by time."""

    indptr: np.ndarray  # int64, n_users + 1
    items: np.ndarray  # int32
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64 seconds
    n_items: int

    @property
    def n_users(self) -> int:
        return int(self.indptr.size - 1)

    @classmethod
    def from_arrays(
        cls, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray, n_users: int,
        n_items: int,
    ) -> Interactions:
        """Build from index arrays (any order); rows are sorted by (user, timestamp, item)."""
        order = np.lexsort((items, timestamps, users))
        users = np.asarray(users)[order]
        counts = np.bincount(users, minlength=n_users)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            indptr,
            np.asarray(items, dtype=np.int32)[order],
            np.asarray(ratings, dtype=np.float32)[order],
            np.asarray(timestamps, dtype=np.int64)[order],
            int(n_items),
        )

    def user_items(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]


def exclude_seen_(scores: np.ndarray, users: np.ndarray, seen: Interactions) -> np.ndarray:
    """Set scores of every (user, item) seen in training to -inf, in place, for a dense [n, n_items] block.

    The reference statement of the seen-item rule (the compiled channels' kernels are tested against it);
    candidate lists use `kernels.seen_mask`.
    """
    users = np.asarray(users, dtype=np.int64)
    starts, ends = seen.indptr[users], seen.indptr[users + 1]
    lengths = ends - starts
    rows = np.repeat(np.arange(users.size), lengths)
    # positions starts[i] .. ends[i]-1 for every user, without a Python loop
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = seen.items[np.repeat(starts, lengths) + offsets]
    scores[rows, cols] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k indices (descending score) and scores per row; -inf entries become index -1 / score nan."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int32)
    val = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    invalid = ~np.isfinite(val)
    idx[invalid] = -1
    val[invalid] = np.nan
    return idx, val


class BaseRecall(ABC):
    """A recall channel: fit on training interactions, then answer top-k for MANY users at once."""

    name: str

    @abstractmethod
    def fit(self, train: Interactions) -> BaseRecall:
        """Learn from the training interactions (index space of the split's IdMap)."""

    @abstractmethod
    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices [n, k] (int32, -1 padded) and scores [n, k] (float32, nan padded) for
        user indices `users`, best first, excluding every item the user interacted with in training."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Persist the fitted channel under `directory` (atomically)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, train: Interactions) -> BaseRecall:
        """Load a channel saved by `save`; `train` supplies the seen items."""
