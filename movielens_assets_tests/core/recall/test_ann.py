from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.recall.ann import AnnConfig, AnnIndex, recommend_by_vectors
from movielens_assets.core.recall.base import Interactions


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    x = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _exact(items: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def test_flat_index_is_exact_and_batched():
    items, queries = _clustered(3000, 16, 0), _clustered(300, 16, 1)
    index = AnnIndex.build(items, AnnConfig(search_batch=64))  # several faiss calls
    assert index.kind == "flat"
    ids, sc = index.search(queries, 10)
    assert ids.dtype == np.int32 and ids.shape == (300, 10)
    exact = _exact(items, queries, 10)
    assert (ids == exact).mean() > 0.99  # the rest: float near-ties swapped
    np.testing.assert_allclose(sc, np.take_along_axis(queries @ items.T, exact, axis=1), atol=1e-5)
    np.testing.assert_allclose(sc, np.take_along_axis(queries @ items.T, ids, axis=1), atol=1e-5)
    assert (np.diff(sc, axis=1) <= 1e-6).all()


def test_auto_kind_switches_on_size_threshold():
    items = _clustered(2000, 8, 2)
    assert AnnIndex.build(items, AnnConfig(exact_max_items=2000)).kind == "flat"
    assert AnnIndex.build(items, AnnConfig(exact_max_items=1999, large_kind="ivf")).kind == "ivf"
    assert AnnIndex.build(items, AnnConfig(exact_max_items=1999, large_kind="hnsw")).kind == "hnsw"
    with pytest.raises(ValueError):
        AnnConfig(kind="lsh")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_agree_with_exact_on_most_neighbours(kind):
    items, queries = _clustered(5000, 32, 3), _clustered(200, 32, 4)
    exact = _exact(items, queries, 10)
    index = AnnIndex.build(items, AnnConfig(kind=kind, ivf_nprobe=16))
    ids, _ = index.search(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])
    assert overlap >= 0.85, overlap
    # and they are approximate indexes, not a flat index in disguise
    assert type(index.index).__name__ != "IndexFlatIP"


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    items, queries = _clustered(2000, 16, 5), _clustered(50, 16, 6)
    ext_ids = np.arange(2000, dtype=np.int64) * 3 + 7
    index = AnnIndex.build(items, AnnConfig(kind=kind), ids=ext_ids)
    before = index.search(queries, 20)
    index.save(tmp_path / "idx")
    back = AnnIndex.load(tmp_path / "idx")
    assert back.kind == kind
    after = back.search(queries, 20)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1])
    assert np.isin(after[0], ext_ids).all()  # external ids are returned


def test_search_pads_when_k_exceeds_items():
    items = _clustered(5, 4, 7)
    ids, sc = AnnIndex.build(items).search(items[:2], 8)
    assert (ids[:, 5:] == -1).all() and np.isnan(sc[:, 5:]).all()
    assert sorted(ids[0, :5].tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_recommend_by_vectors_excludes_seen_and_matches_exact(kind):
    rng = np.random.default_rng(8)
    items, users_v = _clustered(1500, 16, 9), _clustered(40, 16, 10)
    n_users = 40
    # each user has seen their 30 best items (the ones an unfiltered search would return first) + random ones;
    # user 0 is heavy (seen 600 items: forces the dense path for its batch)
    best = _exact(items, users_v, 30)
    u_rows, i_rows = [], []
    for u in range(n_users):
        seen = set(best[u].tolist()) | set(rng.choice(1500, 600 if u == 0 else 10, replace=False).tolist())
        u_rows += [u] * len(seen)
        i_rows += sorted(seen)
    train = Interactions.from_arrays(np.array(u_rows), np.array(i_rows), np.ones(len(u_rows)),
                                     np.arange(len(u_rows)), n_users, 1500)
    index = AnnIndex.build(items, AnnConfig(kind=kind, ivf_nprobe=4))
    users = np.arange(n_users)[::-1].copy()
    idx, sc = recommend_by_vectors(index, items, users_v[users], users, train, 20, batch_size=8)
    scores = users_v[users] @ items.T
    for row, u in enumerate(users):
        seen = train.user_items(int(u))
        assert not np.isin(idx[row], seen).any()
        assert (idx[row] >= 0).all()
        s = scores[row].copy()
        s[seen] = -np.inf
        if kind == "flat":
            np.testing.assert_allclose(sc[row], np.sort(s)[::-1][:20], atol=1e-5)  # the exact best unseen
        assert (np.diff(sc[row]) <= 1e-6).all()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_capped_search_depth_falls_back_to_exact_for_crowded_rows(kind):
    """Every user saw their 30 best items; a first search only k + 5 deep finds too few unseen ones, so
    those rows must be scored exactly -- the lists equal exact search, never short."""
    items, users_v = _clustered(800, 16, 11), _clustered(30, 16, 12)
    best = _exact(items, users_v, 30)
    u_rows = np.repeat(np.arange(30), 30)
    train = Interactions.from_arrays(u_rows, best.reshape(-1), np.ones(u_rows.size), np.arange(u_rows.size), 30, 800)
    index = AnnIndex.build(items, AnnConfig(kind=kind))
    users = np.arange(30)
    idx, sc = recommend_by_vectors(index, items, users_v, users, train, 10, batch_size=7, max_extra=5)
    scores = users_v @ items.T
    for u in users:
        s = scores[u].copy()
        s[train.user_items(int(u))] = -np.inf
        np.testing.assert_allclose(sc[u], np.sort(s)[::-1][:10], atol=1e-5)
        assert not np.isin(idx[u], train.user_items(int(u))).any()
