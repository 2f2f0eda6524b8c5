"""Compiled loops (numba) for the recall hot paths: the ItemCF build and the batch top-k of every channel.

Why compiled loops: the work is "for each row, accumulate into a dense scratch array, then keep the best
k" — cheap per element, but hopeless as numpy (which must materialise and sort all (row, col) pairs) and
not a plain matrix product either (ItemCF's co-occurrence window and time decay). Each kernel keeps one
scratch array per worker chunk (a dense accumulator, "touched"/"seen" stamps that never need clearing,
a k-sized min-heap), so memory is O(threads x n_items + output), whatever the number of ratings.

Conventions shared with `base.py`: item indices are int32, -1 padded; scores float32, nan padded; rows
are best first, ties broken by the smaller item index; every item a user interacted with in training
(CSR `indptr` / `items` of `Interactions`) is excluded. `base.exclude_seen_` + `base.top_k` are the
plain-numpy reference that tests compare these kernels against.

Imported lazily by the channels (numba compiles on first use; `cache=True` keeps the machine code in
`__pycache__`, so later processes start in well under a second).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

_CACHE = True


def _chunks(n_rows: int) -> int:
    """Worker chunks for `n_rows` rows: a few per thread (load balance), each with its own scratch."""
    return max(1, min(n_rows, 4 * numba.get_num_threads()))


# ------------------------------------------------------------------------------------- bounded top-k heap


@njit(cache=_CACHE, inline="always")
def _worse(s_a, i_a, s_b, i_b) -> bool:
    """(s_a, i_a) ranks below (s_b, i_b): lower score, or same score and larger index."""
    return s_a < s_b or (s_a == s_b and i_a > i_b)


@njit(cache=_CACHE)
def _sift_down(heap_s, heap_i, size, s, j) -> None:
    """Place (s, j) at the root of a min-heap of `size` entries and sift it down to its position."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _worse(heap_s[child + 1], heap_i[child + 1], heap_s[child], heap_i[child]):
            child += 1
        if _worse(heap_s[child], heap_i[child], s, j):
            heap_s[pos] = heap_s[child]
            heap_i[pos] = heap_i[child]
            pos = child
        else:
            break
    heap_s[pos] = s
    heap_i[pos] = j


@njit(cache=_CACHE)
def _heap_offer(heap_s, heap_i, size, k, s, j) -> int:
    """Offer (s, j) to a min-heap (root = worst kept) of capacity k; returns the new size."""
    if size < k:
        pos = size
        while pos > 0:  # sift up
            parent = (pos - 1) >> 1
            if _worse(s, j, heap_s[parent], heap_i[parent]):
                heap_s[pos] = heap_s[parent]
                heap_i[pos] = heap_i[parent]
                pos = parent
            else:
                break
        heap_s[pos] = s
        heap_i[pos] = j
        return size + 1
    if _worse(heap_s[0], heap_i[0], s, j):  # better than the worst kept: replace the root
        _sift_down(heap_s, heap_i, size, s, j)
    return size


@njit(cache=_CACHE)
def _heap_drain(heap_s, heap_i, size, out_i, out_s) -> None:
    """Write the heap's entries best first into out_i / out_s (the rest of the row stays padding)."""
    while size > 0:
        size -= 1
        out_i[size] = heap_i[0]
        out_s[size] = heap_s[0]
        if size > 0:  # pop: the last entry goes to the root and sifts down over the remaining entries
            _sift_down(heap_s, heap_i, size, heap_s[size], heap_i[size])


@njit(cache=_CACHE, inline="always")
def _accumulate(acc, stamp, touched, cnt, tag, j, w) -> int:
    """acc[j] += w in a sparse accumulator whose live entries carry stamp == tag (no clearing between
    rows); a first touch records j in `touched`. Returns the new count of touched entries."""
    if stamp[j] != tag:
        stamp[j] = tag
        acc[j] = w
        touched[cnt] = j
        return cnt + 1
    acc[j] += w
    return cnt


@njit(cache=_CACHE, inline="always")
def _mark_seen(seen, indptr, items, u, tag) -> None:
    """seen[j] = tag for every training item j of user u (stamps: no clearing between users)."""
    for q in range(indptr[u], indptr[u + 1]):
        seen[items[q]] = tag


# ------------------------------------------------------------------------------------------- ItemCF build


@njit(parallel=True, cache=_CACHE)
def _itemcf_neighbours(h_items, h_ts, h_owner, u_start, u_end, user_w, occ_indptr, occ_pos, item_w,
                       window, inv_decay, n_nb, n_chunks, out_idx, out_sim):
    n_items = item_w.size
    for c in prange(n_chunks):
        acc = np.zeros(n_items, np.float64)
        stamp = np.zeros(n_items, np.int32)
        touched = np.empty(n_items, np.int32)
        heap_s = np.empty(n_nb, np.float64)
        heap_i = np.empty(n_nb, np.int64)
        for i in range(c, n_items, n_chunks):  # strided: popular and rare items spread over the chunks
            if occ_indptr[i + 1] == occ_indptr[i]:
                continue
            tag = i + 1
            cnt = 0
            for o in range(occ_indptr[i], occ_indptr[i + 1]):
                p = occ_pos[o]
                u = h_owner[p]
                lo = max(u_start[u], p - window)
                hi = min(u_end[u], p + window + 1)
                wu = user_w[u]
                tp = h_ts[p]
                for q in range(lo, hi):
                    j = h_items[q]
                    if j == i:
                        continue  # the item itself (and a re-rated duplicate of it)
                    w = wu
                    if inv_decay > 0.0:
                        w = wu / (1.0 + abs(h_ts[q] - tp) * inv_decay)
                    cnt = _accumulate(acc, stamp, touched, cnt, tag, j, w)
            size = 0
            wi = item_w[i]
            for t in range(cnt):
                j = touched[t]
                sc = acc[j] / np.sqrt(wi * item_w[j])
                if size < n_nb or sc >= heap_s[0]:
                    size = _heap_offer(heap_s, heap_i, size, n_nb, sc, j)
            _heap_drain(heap_s, heap_i, size, out_idx[i], out_sim[i])


def itemcf_neighbours(h_items: np.ndarray, h_ts: np.ndarray, u_start: np.ndarray, u_end: np.ndarray,
                      user_w: np.ndarray, item_w: np.ndarray, window: int, decay_seconds: float | None,
                      n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `n_neighbors` items per item by cosine-normalised, windowed, time-decayed co-occurrence.

    `h_items` / `h_ts`: the (truncated) histories of all users concatenated, user u owning positions
    u_start[u] .. u_end[u]-1 in time order. Two positions p, q of one user co-occur when |p - q| <= window;
    the pair adds user_w[u] / (1 + |ts_p - ts_q| / decay_seconds) (no decay when None) to C(i, j).
    sim(i, j) = C(i, j) / sqrt(item_w[i] * item_w[j]). Item-major: every item's row is accumulated in a
    dense scratch array from the positions where it occurs (an inverted index), so no pair list is ever
    materialised or sorted. Returns ([n_items, N] int32, -1 padded; [n_items, N] float32, nan padded).
    """
    n_items = int(item_w.size)
    h_items = np.ascontiguousarray(h_items, dtype=np.int32)
    lengths = (np.asarray(u_end) - np.asarray(u_start)).astype(np.int64)
    h_owner = np.repeat(np.arange(lengths.size, dtype=np.int32), lengths)
    occ_pos = np.argsort(h_items, kind="stable").astype(np.int64)  # positions grouped by item
    occ_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(h_items, minlength=n_items), out=occ_indptr[1:])
    out_idx = np.full((n_items, n_neighbors), -1, dtype=np.int32)
    out_sim = np.full((n_items, n_neighbors), np.nan, dtype=np.float32)
    if n_items and n_neighbors:
        _itemcf_neighbours(h_items, np.ascontiguousarray(h_ts, dtype=np.int64), h_owner,
                           np.ascontiguousarray(u_start, dtype=np.int64), np.ascontiguousarray(u_end, dtype=np.int64),
                           np.ascontiguousarray(user_w, dtype=np.float64), occ_indptr, occ_pos,
                           np.ascontiguousarray(item_w, dtype=np.float64), int(window),
                           1.0 / (decay_seconds) if decay_seconds else 0.0, int(n_neighbors),
                           _chunks(n_items), out_idx, out_sim)
    return out_idx, out_sim


# ------------------------------------------------------------------------------ batch recall (top-k unseen)


@njit(parallel=True, cache=_CACHE)
def _neighbour_topk(users, indptr, items, item_ok, nbr_idx, nbr_sim, weights, n_items, k, n_chunks,
                    out_idx, out_val):
    n = users.size
    n_recent = weights.size
    n_nb = nbr_idx.shape[1]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        acc = np.zeros(n_items, np.float64)
        reached = np.zeros(n_items, np.int64)
        seen = np.zeros(n_items, np.int64)
        touched = np.empty(n_items, np.int32)
        heap_s = np.empty(k, np.float64)
        heap_i = np.empty(k, np.int64)
        for r in range(c * step, min(n, (c + 1) * step)):
            u = users[r]
            tag = r + 1
            _mark_seen(seen, indptr, items, u, tag)
            start, end = indptr[u], indptr[u + 1]
            cnt = 0
            for a in range(min(n_recent, end - start)):
                h = items[end - 1 - a]
                if not item_ok[h]:
                    continue
                w = weights[a]
                for t in range(n_nb):
                    j = nbr_idx[h, t]
                    if j < 0:
                        continue
                    cnt = _accumulate(acc, reached, touched, cnt, tag, j, w * nbr_sim[h, t])
            size = 0
            for t in range(cnt):
                j = touched[t]
                if seen[j] != tag and (size < k or acc[j] >= heap_s[0]):
                    size = _heap_offer(heap_s, heap_i, size, k, acc[j], j)
            _heap_drain(heap_s, heap_i, size, out_idx[r], out_val[r])


def neighbour_topk(users: np.ndarray, indptr: np.ndarray, items: np.ndarray, nbr_idx: np.ndarray,
                   nbr_sim: np.ndarray, weights: np.ndarray, k: int, item_ok: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """score(u, j) = sum over the user's a-th most recent training item h (a < len(weights), item_ok[h]) of
    weights[a] * nbr_sim[h, t] where nbr_idx[h, t] == j. Candidates: items reached through a neighbour
    list and not seen by u in training; top k per user (int32 [n, k] -1 padded, float32 [n, k] nan padded)."""
    users = np.ascontiguousarray(users, dtype=np.int64)
    n_items = int(nbr_idx.shape[0])
    out_idx = np.full((users.size, k), -1, dtype=np.int32)
    out_val = np.full((users.size, k), np.nan, dtype=np.float32)
    if users.size and k > 0:
        ok = np.ones(n_items, dtype=np.bool_) if item_ok is None else np.ascontiguousarray(item_ok, dtype=np.bool_)
        _neighbour_topk(users, np.ascontiguousarray(indptr, dtype=np.int64),
                        np.ascontiguousarray(items, dtype=np.int32), ok,
                        np.ascontiguousarray(nbr_idx, dtype=np.int32),
                        np.ascontiguousarray(nbr_sim, dtype=np.float32),
                        np.ascontiguousarray(weights, dtype=np.float64), n_items, int(k), _chunks(users.size),
                        out_idx, out_val)
    return out_idx, out_val


@njit(parallel=True, cache=_CACHE)
def _ranked_unseen(users, indptr, items, ranking, scores, n_items, k, n_chunks, out_idx, out_val):
    n = users.size
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        seen = np.zeros(n_items, np.int64)
        for r in range(c * step, min(n, (c + 1) * step)):
            tag = r + 1
            _mark_seen(seen, indptr, items, users[r], tag)
            got = 0
            for t in range(ranking.size):
                if got == k:
                    break
                j = ranking[t]
                if seen[j] != tag:
                    out_idx[r, got] = j
                    out_val[r, got] = scores[j]
                    got += 1


def ranked_unseen(users: np.ndarray, indptr: np.ndarray, items: np.ndarray, ranking: np.ndarray,
                  scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k items of one global `ranking` (best first) that each user did not see in training."""
    users = np.ascontiguousarray(users, dtype=np.int64)
    out_idx = np.full((users.size, k), -1, dtype=np.int32)
    out_val = np.full((users.size, k), np.nan, dtype=np.float32)
    if users.size and k > 0:
        _ranked_unseen(users, np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(items, dtype=np.int32),
                       np.ascontiguousarray(ranking, dtype=np.int64), np.ascontiguousarray(scores, dtype=np.float32),
                       int(scores.size), int(k), _chunks(users.size), out_idx, out_val)
    return out_idx, out_val


@njit(parallel=True, cache=_CACHE)
def _dense_topk_unseen(scores, users, indptr, items, k, n_chunks, out_idx, out_val):
    n, n_items = scores.shape
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        seen = np.zeros(n_items, np.int64)
        heap_s = np.empty(k, np.float64)
        heap_i = np.empty(k, np.int64)
        for r in range(c * step, min(n, (c + 1) * step)):
            tag = r + 1
            _mark_seen(seen, indptr, items, users[r], tag)
            size = 0
            thr = -np.inf  # scores must beat this: -inf until the heap is full, then its worst kept score
            row = scores[r]
            for j in range(n_items):
                s = row[j]
                # strict: skips -inf and nan; once full, an equal score at a larger j ranks below the kept one
                if s > thr and seen[j] != tag:
                    size = _heap_offer(heap_s, heap_i, size, k, s, j)
                    if size == k:
                        thr = heap_s[0]
            _heap_drain(heap_s, heap_i, size, out_idx[r], out_val[r])


def dense_topk_unseen(scores: np.ndarray, users: np.ndarray, indptr: np.ndarray, items: np.ndarray, k: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row of a dense [n, n_items] score block, skipping the row user's training items and
    -inf / nan scores (the kernel form of `exclude_seen_` + `top_k`; `scores` is not modified)."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    users = np.ascontiguousarray(users, dtype=np.int64)
    out_idx = np.full((users.size, k), -1, dtype=np.int32)
    out_val = np.full((users.size, k), np.nan, dtype=np.float32)
    if users.size and k > 0:
        _dense_topk_unseen(scores, users, np.ascontiguousarray(indptr, dtype=np.int64),
                           np.ascontiguousarray(items, dtype=np.int32), int(k), _chunks(users.size), out_idx, out_val)
    return out_idx, out_val


@njit(parallel=True, cache=_CACHE)
def _seen_mask(candidates, users, indptr, items, n_items, n_chunks, out):
    n, width = candidates.shape
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        seen = np.zeros(n_items, np.int64)
        for r in range(c * step, min(n, (c + 1) * step)):
            tag = r + 1
            _mark_seen(seen, indptr, items, users[r], tag)
            for t in range(width):
                j = candidates[r, t]
                out[r, t] = j >= 0 and seen[j] == tag


def seen_mask(candidates: np.ndarray, users: np.ndarray, indptr: np.ndarray, items: np.ndarray, n_items: int
              ) -> np.ndarray:
    """Boolean [n, c]: True where candidates[r, t] (an item index, -1 = none) was seen by users[r]."""
    candidates = np.ascontiguousarray(candidates, dtype=np.int64)
    out = np.zeros(candidates.shape, dtype=np.bool_)
    if candidates.size:
        _seen_mask(candidates, np.ascontiguousarray(users, dtype=np.int64),
                   np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(items, dtype=np.int32),
                   int(n_items), _chunks(candidates.shape[0]), out)
    return out
