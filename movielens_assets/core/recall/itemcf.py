"""ItemCF channel: item-item similarity from weighted co-occurrence, top-N neighbours per item.

Build (vectorised numpy, chunked by user so memory stays bounded; no scipy):
- each user's history is truncated to the last `max_history` items (heavy users do not dominate,
  and their pair count stays bounded);
- within a history, item pairs at most `window` positions apart co-occur (both directions);
- a pair contributes `w_u * decay`, with `w_u = 1 / log(1 + n_u)` (inverse user activity, `n_u` the
  user's full history length) and `decay = 1 / (1 + |dt| / time_decay_days)` (pairs close in time
  count more; `time_decay_days=None` disables it);
- similarity = C(i, j) / sqrt(W_i * W_j) with `W_i` the summed user weights of item i (cosine);
- only the `n_neighbors` most similar items per item are kept (dense [n_items, N] arrays, -1 padded).

Recommend (batch): score(u, j) = sum over the user's `n_recent` latest items h of
`recency ** age(h) * sim(h, j)`, scattered into a dense block of users x items (blocks sized by
`dense_cells`); only items reached through a neighbour are candidates; training items excluded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.recall.base import BaseRecall, Interactions, exclude_seen_, top_k
from movielens_assets.core.recall.sparse import aggregate, top_k_by_row


@dataclass(frozen=True)
class ItemCFParams:
    max_history: int = 200
    window: int = 50
    time_decay_days: float | None = 30.0
    n_neighbors: int = 100
    n_recent: int = 20
    recency: float = 0.9
    chunk_pairs: int = 20_000_000
    """Pairs generated per user chunk (bounds the working memory of the build)."""
    merge_every: int = 60_000_000
    """Accumulated partial pairs that trigger a merge of the partial sums."""
    dense_cells: int = 8_000_000
    """Recommend scores blocks of users x items of about this many cells."""


def _positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges starts[i] .. starts[i]+lengths[i]-1, without a Python loop."""
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _pad(result: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    idx, val = result
    extra = k - idx.shape[1]
    return (np.pad(idx, ((0, 0), (0, extra)), constant_values=-1),
            np.pad(val, ((0, 0), (0, extra)), constant_values=np.nan))


class ItemCFRecall(BaseRecall):
    name = "itemcf"

    def __init__(self, params: ItemCFParams | None = None, **overrides):
        self.params = params or ItemCFParams(**overrides)
        self.nbr_idx: np.ndarray | None = None
        self.nbr_sim: np.ndarray | None = None
        self.train: Interactions | None = None

    # -- build ---------------------------------------------------------------------------------
    def fit(self, train: Interactions) -> ItemCFRecall:
        p, n_items = self.params, train.n_items
        lengths = np.diff(train.indptr)
        user_w = (1.0 / np.log1p(np.maximum(lengths, 1))).astype(np.float32)
        kept = np.minimum(lengths, p.max_history)
        pos = _positions(train.indptr[1:] - kept, kept)  # the last `max_history` rows of each user
        items = train.items[pos].astype(np.int64)
        ts = train.timestamps[pos]
        owner = np.repeat(np.arange(train.n_users, dtype=np.int64), kept)
        item_w = np.bincount(items, weights=user_w[owner], minlength=n_items)

        # Users in chunks of about `chunk_pairs` generated pairs.
        user_pairs = 2 * kept * np.minimum(np.maximum(kept - 1, 0), p.window)
        chunk_of_user = np.cumsum(user_pairs) // max(p.chunk_pairs, 1)
        ends = np.r_[np.flatnonzero(np.diff(chunk_of_user)) + 1, train.n_users]
        user_start = np.r_[0, np.cumsum(kept)]
        acc_keys: list[np.ndarray] = []
        acc_vals: list[np.ndarray] = []
        pending = 0
        prev = 0
        for end in ends:
            lo, hi = int(user_start[prev]), int(user_start[int(end)])
            prev = int(end)
            if hi <= lo:
                continue
            keys, vals = self._chunk_pairs(items[lo:hi], ts[lo:hi], owner[lo:hi], user_w, n_items)
            acc_keys.append(keys)
            acc_vals.append(vals)
            pending += keys.size
            if pending > p.merge_every and len(acc_keys) > 1:
                k, v = aggregate(np.concatenate(acc_keys), np.concatenate(acc_vals))
                acc_keys, acc_vals, pending = [k], [v], k.size
        keys, co = aggregate(np.concatenate(acc_keys) if acc_keys else np.zeros(0, np.int64),
                             np.concatenate(acc_vals) if acc_vals else np.zeros(0, np.float32))
        lo_item, hi_item = keys // n_items, keys % n_items
        del keys
        sim = (co / np.sqrt(item_w[lo_item] * item_w[hi_item])).astype(np.float32)
        rows, cols = np.concatenate([lo_item, hi_item]), np.concatenate([hi_item, lo_item])
        self.nbr_idx, self.nbr_sim = top_k_by_row(rows, cols, np.concatenate([sim, sim]), n_items, p.n_neighbors)
        self.train = train
        return self

    def _chunk_pairs(self, items, ts, owner, user_w, n_items) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        keys_parts, val_parts = [], []
        n = items.size
        for d in range(1, p.window + 1):
            if d >= n:
                break
            i = np.flatnonzero(owner[:-d] == owner[d:])
            if i.size == 0:
                break  # no user has a pair this far apart (histories are contiguous)
            j = i + d
            w = user_w[owner[i]]
            if p.time_decay_days:
                w = w / (1.0 + np.abs(ts[j] - ts[i]).astype(np.float32) / np.float32(p.time_decay_days * 86400.0))
            a, b = np.minimum(items[i], items[j]), np.maximum(items[i], items[j])
            keys_parts.append(a * n_items + b)  # unordered pair; mirrored once at the end
            val_parts.append(w)
        if not keys_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        keys = np.concatenate(keys_parts)
        vals = np.concatenate(val_parts).astype(np.float32)
        same = (keys // n_items) == (keys % n_items)  # an item never neighbours itself (re-rated duplicates)
        return aggregate(keys[~same], vals[~same])

    # -- recommend -----------------------------------------------------------------------------
    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.nbr_idx is not None and self.train is not None, "fit first"
        users = np.asarray(users, dtype=np.int64)
        # Users in blocks whose dense score matrix stays around `dense_cells` floats.
        step = max(1, self.params.dense_cells // max(self.train.n_items, 1))
        parts = [self._recommend_block(users[s : s + step], k) for s in range(0, max(users.size, 1), step)]
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])

    def _recommend_block(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        p, train = self.params, self.train
        ends = train.indptr[users + 1]
        n_hist = np.minimum(ends - train.indptr[users], p.n_recent)
        pos = _positions(ends - n_hist, n_hist)
        row = np.repeat(np.arange(users.size, dtype=np.int64), n_hist)
        age = np.repeat(ends, n_hist) - 1 - pos  # 0 = latest item
        hist = train.items[pos]
        weight = (np.float32(p.recency) ** age.astype(np.float32)).astype(np.float32)
        nbr = self.nbr_idx[hist]  # [h, N]
        sims = self.nbr_sim[hist] * weight[:, None]
        valid = nbr >= 0
        rows = np.broadcast_to(row[:, None], nbr.shape)[valid]
        keys = rows * train.n_items + nbr[valid].astype(np.int64)
        dense = np.bincount(keys, weights=sims[valid], minlength=users.size * train.n_items)
        dense = dense.astype(np.float32).reshape(users.size, train.n_items)
        touched = np.zeros(dense.shape, dtype=bool)
        touched.reshape(-1)[keys] = True
        dense[~touched] = -np.inf  # only items reached through a neighbour are candidates
        exclude_seen_(dense, users, train)
        return top_k(dense, k) if k <= train.n_items else _pad(top_k(dense, train.n_items), k)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / "neighbors.npy", self.nbr_idx)
            np.save(tmp / "similarities.npy", self.nbr_sim)
            (tmp / "params.json").write_text(json.dumps(asdict(self.params), indent=2))

    @classmethod
    def load(cls, directory: Path, train: Interactions) -> ItemCFRecall:
        model = cls(ItemCFParams(**json.loads((directory / "params.json").read_text())))
        model.nbr_idx = np.load(directory / "neighbors.npy")
        model.nbr_sim = np.load(directory / "similarities.npy")
        model.train = train
        return model
