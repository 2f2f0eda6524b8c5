from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.recall.ann import AnnConfig
from movielens_assets.core.recall.base import IdMap, Interactions
from movielens_assets.core.recall.semantic import SemanticConfig, SemanticRecall, align_embeddings

N_GROUPS, PER_GROUP, D = 10, 8, 16
N_ITEMS = N_GROUPS * PER_GROUP  # item i belongs to topic i // PER_GROUP


def topic_embeddings(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.eye(D)[:N_GROUPS] * 3.0
    x = centres[np.arange(N_ITEMS) // PER_GROUP] + 0.3 * rng.normal(size=(N_ITEMS, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def interactions(per_user: list[list[int]], n_items: int = N_ITEMS) -> Interactions:
    users = np.repeat(np.arange(len(per_user)), [len(p) for p in per_user])
    items = np.concatenate([np.asarray(p) for p in per_user])
    ts = np.concatenate([np.arange(len(p)) for p in per_user])  # listed in time order
    return Interactions.from_arrays(users, items, np.ones(items.size), ts, len(per_user), n_items)


def test_recommends_neighbours_of_recent_items_excluding_seen():
    # user 0: an old item of topic 2, then recent items of topic 5; user 1: topic 7 only
    train = interactions([[16, 17, 40, 41, 42], [56, 57]])
    model = SemanticRecall(topic_embeddings(), config=SemanticConfig(recent=3, neighbours=10)).fit(train)
    idx, sc = model.recommend(np.array([0, 1]), 5)
    assert set(idx[0].tolist()) <= set(range(40, 48)) - {40, 41, 42}  # topic 5, unseen
    assert set(idx[1].tolist()) <= set(range(56, 64)) - {56, 57}
    assert (np.diff(sc, axis=1) <= 1e-6).all() and np.isfinite(sc).all()
    # topic 2 (items 16, 17) is older than the last 3 items: not used as a query
    full, _ = model.recommend(np.array([0]), N_ITEMS)
    assert not np.isin(full[0], np.arange(16, 24)).any()
    for u in (0, 1):
        assert not np.isin(idx[u], train.user_items(u)).any()


def test_recency_weighting_ranks_the_latest_items_neighbours_first():
    train = interactions([[8, 9, 24, 25]])  # topic 1 first, topic 3 most recent
    model = SemanticRecall(topic_embeddings(), config=SemanticConfig(recent=4, neighbours=10,
                                                                      recency_decay=0.5)).fit(train)
    idx, _ = model.recommend(np.array([0]), 12)
    topics = idx[0] // PER_GROUP
    assert (topics[:6] == 3).all() and set(topics[6:12].tolist()) == {1}
    # with no decay, the two topics are interleaved: the recency weight is what orders them
    flat = SemanticRecall(topic_embeddings(), config=SemanticConfig(recent=4, neighbours=10,
                                                                     recency_decay=1.0)).fit(train)
    topics_flat = flat.recommend(np.array([0]), 12)[0][0] // PER_GROUP
    assert not (topics_flat[:6] == 3).all()


def test_cold_items_are_found_and_items_without_embedding_are_not():
    # items 40..47 (topic 5): popular ones rated by many users, 46 and 47 never rated (cold)
    many = [[40, 41, 42, 43] for _ in range(20)]
    train = interactions(many + [[44]])
    has = np.ones(N_ITEMS, bool)
    has[45] = False  # no embedding: never a candidate
    model = SemanticRecall(topic_embeddings(), has, SemanticConfig(recent=2, neighbours=10)).fit(train)
    idx, _ = model.recommend(np.array([20]), 4)
    assert {46, 47} <= set(idx[0].tolist())
    assert 45 not in idx[0] and 44 not in idx[0]
    assert np.bincount(train.items, minlength=N_ITEMS)[[46, 47]].tolist() == [0, 0]
    # a user whose only item has no embedding gets nothing (rather than noise)
    lonely = interactions([[45]])
    idx, sc = SemanticRecall(topic_embeddings(), has, SemanticConfig(recent=2)).fit(lonely).recommend(np.array([0]), 3)
    assert (idx == -1).all() and np.isnan(sc).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_batch_matches_single_and_save_load_round_trip(tmp_path, kind):
    rng = np.random.default_rng(5)
    per_user = [sorted(rng.choice(N_ITEMS, rng.integers(1, 15), replace=False).tolist()) for _ in range(300)]
    train = interactions(per_user)
    config = SemanticConfig(neighbours=20, ann=AnnConfig(kind=kind))
    model = SemanticRecall(topic_embeddings(), config=config).fit(train)
    users = np.arange(300)
    idx, sc = model.recommend(users, 10)
    for u in (0, 17, 299):
        i1, s1 = model.recommend(np.array([u]), 10)
        np.testing.assert_array_equal(i1[0], idx[u])
        np.testing.assert_allclose(s1[0], sc[u])
    for u in users:
        assert not np.isin(idx[u], train.user_items(int(u))).any()
    model.save(tmp_path / "sem")
    back = SemanticRecall.load(tmp_path / "sem", train)
    i2, s2 = back.recommend(users, 10)
    np.testing.assert_array_equal(i2, idx)
    np.testing.assert_allclose(s2, sc)


def test_misaligned_embeddings_are_rejected():
    with pytest.raises(ValueError):
        SemanticRecall(topic_embeddings()).fit(interactions([[1]], n_items=N_ITEMS + 1))


def test_align_embeddings_to_id_map():
    ids = IdMap.from_train(np.array([1]), np.array([10, 20, 30]))
    vecs = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)
    emb, has = align_embeddings(ids, np.array([30, 10, 99]), vecs)  # 99 not a training item, 20 missing
    assert has.tolist() == [True, False, True]
    np.testing.assert_array_equal(emb, [[0, 1], [0, 0], [1, 0]])
