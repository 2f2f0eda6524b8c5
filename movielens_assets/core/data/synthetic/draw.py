"""Vectorised draw helpers shared by the catalogue, the users and the ratings: a fast stable argsort of
small int keys (`_order`) and one categorical draw per row (`_categorical_rows`).
"""

from __future__ import annotations

import numpy as np


def _order(key: np.ndarray) -> np.ndarray:
    """argsort of small non-negative int keys (ties by position), via one int64 sort (much faster)."""
    n = key.size
    bits = max(1, int(n - 1).bit_length())
    if int(key.max(initial=0)) >= 1 << (63 - bits):  # pragma: no cover - keys are small by construction
        return np.argsort(key, kind="stable")
    comp = np.sort((key.astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
    return comp & ((1 << bits) - 1)


def _categorical_rows(table: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per query from the (unnormalised) probability row `table[row]`."""
    cum = np.cumsum(table, axis=1)
    cum /= np.maximum(cum[:, -1:], 1e-300)
    k = table.shape[1]
    flat = (np.arange(cum.shape[0])[:, None] + cum).ravel()
    o = _order(row)
    pos = np.empty(row.size, dtype=np.int64)
    pos[o] = np.searchsorted(flat, row[o] + rng.random(row.size), side="right")
    return np.clip(pos - row * k, 0, k - 1)
