"""Vectorised helpers for channels that score a sparse set of (user row, item) pairs."""

from __future__ import annotations

import numpy as np

from movielens_assets.core.recall.base import Interactions


def seen_keys(users: np.ndarray, seen: Interactions) -> np.ndarray:
    """Sorted int64 keys `row * n_items + item` of every training item of `users[row]`."""
    users = np.asarray(users, dtype=np.int64)
    starts, ends = seen.indptr[users], seen.indptr[users + 1]
    lengths = ends - starts
    rows = np.repeat(np.arange(users.size, dtype=np.int64), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = seen.items[np.repeat(starts, lengths) + offsets].astype(np.int64)
    return np.sort(rows * seen.n_items + items)


def aggregate(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `values` per distinct key; returns (sorted unique keys, sums)."""
    if keys.size == 0:
        return keys.astype(np.int64), values.astype(np.float32)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.add.reduceat(values, starts).astype(np.float32)


def top_k_by_row(rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, n_rows: int, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cols per row from (row, col, score) triples (distinct pairs) -> padded [n_rows, k]
    (int32 -1 / float32 nan), best first, ties by smaller col."""
    idx = np.full((n_rows, k), -1, dtype=np.int32)
    val = np.full((n_rows, k), np.nan, dtype=np.float32)
    if rows.size == 0 or k == 0:
        return idx, val
    order = np.lexsort((cols, -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    group_start = np.repeat(first, np.diff(np.r_[first, rows.size]))
    rank = np.arange(rows.size) - group_start
    keep = rank < k
    idx[rows[keep], rank[keep]] = cols[keep]
    val[rows[keep], rank[keep]] = scores[keep]
    return idx, val
