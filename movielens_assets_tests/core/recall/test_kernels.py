"""The compiled recall kernels against plain-Python / numpy statements of the same rules."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.recall import kernels
from movielens_assets.core.recall.base import Interactions, exclude_seen_, top_k

N_USERS, N_ITEMS = 120, 90


@pytest.fixture(scope="module")
def train() -> Interactions:
    rng = np.random.default_rng(3)
    n = 3000
    users, items = rng.integers(0, N_USERS, n), rng.zipf(1.4, n) % N_ITEMS
    _, first = np.unique(users * N_ITEMS + items, return_index=True)  # one rating per (user, item)
    ts = rng.integers(0, 200 * 86400, first.size)
    return Interactions.from_arrays(users[first], items[first], np.ones(first.size), ts, N_USERS, N_ITEMS)


def _reference_top(scores: dict[int, float], k: int) -> list[int]:
    """Best k items of {item: score}: higher score first, ties by the smaller item."""
    return [j for j, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def test_dense_topk_unseen_matches_exclude_seen_and_top_k(train):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((N_USERS, N_ITEMS)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    scores[0, 5] = np.nan  # never returned
    users = rng.permutation(N_USERS)
    before = scores.copy()
    idx, val = kernels.dense_topk_unseen(scores[users], users, train.indptr, train.items, 30)
    ref_idx, ref_val = top_k(exclude_seen_(scores[users].copy(), users, train), 30)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(val, ref_val, equal_nan=True)
    np.testing.assert_array_equal(scores, before)  # input untouched
    assert 5 not in idx[np.flatnonzero(users == 0)[0]]
    # k larger than the unseen catalogue: padded with -1 / nan, never a seen item
    idx, val = kernels.dense_topk_unseen(np.ones((1, N_ITEMS), np.float32), np.array([0]), train.indptr,
                                         train.items, N_ITEMS + 5)
    seen = set(train.user_items(0).tolist())
    assert sorted(idx[0][idx[0] >= 0].tolist()) == sorted(set(range(N_ITEMS)) - seen)
    assert (idx[0, N_ITEMS - len(seen):] == -1).all() and np.isnan(val[0, N_ITEMS - len(seen):]).all()


def test_ties_break_by_smaller_index():
    empty = Interactions.from_arrays(np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0, int), 1, 6)
    idx, _ = kernels.dense_topk_unseen(np.array([[1, 2, 2, 1, 2, 0]], np.float32), np.array([0]), empty.indptr,
                                       empty.items, 4)
    assert idx.tolist() == [[1, 2, 4, 0]]


def test_ranked_unseen_walks_the_ranking_skipping_seen(train):
    rng = np.random.default_rng(1)
    pop = rng.random(N_ITEMS).astype(np.float32)
    ranking = np.argsort(-pop, kind="stable")
    users = np.arange(N_USERS)
    idx, val = kernels.ranked_unseen(users, train.indptr, train.items, ranking, pop, 15)
    for u in users:
        seen = set(train.user_items(u).tolist())
        expect = [j for j in ranking.tolist() if j not in seen][:15]
        assert idx[u].tolist() == expect
        np.testing.assert_allclose(val[u], pop[expect])


def test_seen_mask(train):
    rng = np.random.default_rng(2)
    cand = rng.integers(-1, N_ITEMS, (N_USERS, 40))
    users = rng.permutation(N_USERS)
    mask = kernels.seen_mask(cand, users, train.indptr, train.items, N_ITEMS)
    for r, u in enumerate(users):
        seen = set(train.user_items(u).tolist())
        assert mask[r].tolist() == [c >= 0 and c in seen for c in cand[r].tolist()]


def test_neighbour_topk_matches_python(train):
    rng = np.random.default_rng(4)
    n_nb = 12
    nbr = rng.integers(-1, N_ITEMS, (N_ITEMS, n_nb)).astype(np.int32)
    sim = rng.random((N_ITEMS, n_nb)).astype(np.float32)
    sim[:, 0] = 0.0  # a zero similarity still makes the item a candidate
    ok = rng.random(N_ITEMS) < 0.8
    weights = 0.9 ** np.arange(5)
    users = np.arange(N_USERS)
    idx, val = kernels.neighbour_topk(users, train.indptr, train.items, nbr, sim, weights, 25, item_ok=ok)
    for u in users:
        hist = train.user_items(u)
        scores: dict[int, float] = {}
        for a, h in enumerate(hist[::-1][:5].tolist()):
            if not ok[h]:
                continue
            for j, s in zip(nbr[h].tolist(), sim[h].tolist(), strict=True):
                if j >= 0:
                    scores[j] = scores.get(j, 0.0) + weights[a] * s
        for j in set(hist.tolist()):
            scores.pop(j, None)
        expect = _reference_top(scores, 25)
        got = idx[u][idx[u] >= 0].tolist()
        assert len(got) == len(expect)
        # same scores in the same order (float32 sums may swap near-exact ties)
        np.testing.assert_allclose(val[u][: len(got)], [scores[j] for j in expect], rtol=1e-5)
        assert set(got) <= set(scores)


def _itemcf_python(train: Interactions, max_history: int, window: int, decay_days: float | None, n_nb: int):
    co: dict[tuple[int, int], float] = {}
    w_item = np.zeros(train.n_items)
    for u in range(train.n_users):
        lo, hi = train.indptr[u], train.indptr[u + 1]
        wu = 1.0 / np.log1p(max(hi - lo, 1))
        start = max(lo, hi - max_history)
        items, ts = train.items[start:hi].tolist(), train.timestamps[start:hi].tolist()
        for p, i in enumerate(items):
            w_item[i] += wu
            for q in range(max(0, p - window), min(len(items), p + window + 1)):
                j = items[q]
                if j == i:
                    continue
                w = wu / (1 + abs(ts[q] - ts[p]) / (decay_days * 86400)) if decay_days else wu
                co[(i, j)] = co.get((i, j), 0.0) + w
    rows: dict[int, dict[int, float]] = {}
    for (i, j), c in co.items():
        rows.setdefault(i, {})[j] = c / np.sqrt(w_item[i] * w_item[j])
    return {i: (_reference_top(r, n_nb), r) for i, r in rows.items()}, w_item


@pytest.mark.parametrize(("max_history", "window", "decay_days"), [(200, 50, 30.0), (6, 2, None)])
def test_itemcf_neighbours_match_python_pair_counting(train, max_history, window, decay_days):
    ref, w_item = _itemcf_python(train, max_history, window, decay_days, 10)
    lengths = np.diff(train.indptr)
    kept = np.minimum(lengths, max_history)
    pos = np.concatenate([np.arange(train.indptr[u + 1] - kept[u], train.indptr[u + 1]) for u in range(N_USERS)])
    u_end = np.cumsum(kept)
    idx, sim = kernels.itemcf_neighbours(train.items[pos], train.timestamps[pos], u_end - kept, u_end,
                                         1.0 / np.log1p(np.maximum(lengths, 1)), w_item, window,
                                         decay_days * 86400 if decay_days else None, 10)
    for i in range(N_ITEMS):
        if i not in ref:
            assert (idx[i] == -1).all() and np.isnan(sim[i]).all()
            continue
        top, scores = ref[i]
        got = idx[i][idx[i] >= 0].tolist()
        assert len(got) == len(top)
        np.testing.assert_allclose(sim[i][: len(got)], [scores[j] for j in top], rtol=1e-5)
        assert i not in got
