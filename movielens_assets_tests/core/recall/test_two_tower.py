from __future__ import annotations

import numpy as np
import pytest
import torch

from movielens_assets.core.recall.ann import AnnConfig
from movielens_assets.core.recall.base import IdMap, Interactions, exclude_seen_, top_k
from movielens_assets.core.recall.towers import TwoTower, UserTower
from movielens_assets.core.recall.two_tower import (
    TwoTowerConfig,
    TwoTowerRecall,
    _build_model,
    build_histories,
    example_weights,
    in_batch_logits,
    in_batch_softmax_loss,
    item_features_from_movies,
)

N_ITEMS, CLUSTER = 120, 60  # items 0..59 = cluster A, 60..119 = cluster B
TINY = TwoTowerConfig(dim=32, hidden=64, history_len=10, epochs=10, batch_size=256, lr=5e-3, seed=0, num_threads=1)


def clustered(seed: int = 0, n_a: int = 140, n_b: int = 60, per_user: int = 25, held_out: int = 3):
    """Two user groups, each rating (90%) items of its own cluster, by Zipf popularity inside the cluster.
    Group A is larger, so cluster A dominates global popularity. Returns (train, test pairs, group)."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, CLUSTER + 1) ** 0.8
    users, items, ts = [], [], []
    group = np.r_[np.zeros(n_a, int), np.ones(n_b, int)]
    for u, g in enumerate(group):
        own = np.arange(CLUSTER) + g * CLUSTER
        other = np.arange(CLUSTER) + (1 - g) * CLUSTER
        n_other = int(rng.binomial(per_user, 0.1))
        chosen = np.r_[rng.choice(own, per_user - n_other, replace=False, p=zipf / zipf.sum()),
                       rng.choice(other, n_other, replace=False)]
        rng.shuffle(chosen)
        users += [u] * per_user
        items += chosen.tolist()
        ts += (1000 * u + np.arange(per_user)).tolist()
    users, items, ts = np.array(users), np.array(items), np.array(ts)
    last = np.tile(np.arange(per_user) >= per_user - held_out, group.size)
    n_users = group.size
    train = Interactions.from_arrays(users[~last], items[~last], 4.0 * np.ones((~last).sum()), ts[~last],
                                     n_users, N_ITEMS)
    return train, (users[last], items[last]), group


def recall_at(idx: np.ndarray, test: tuple[np.ndarray, np.ndarray], k: int, users: np.ndarray | None = None) -> float:
    tu, ti = test
    hits = np.array([ti[j] in idx[tu[j], :k] for j in range(tu.size)])
    return float(hits.mean() if users is None else hits[np.isin(tu, users)].mean())


@pytest.fixture(scope="module")
def trained():
    train, test, group = clustered()
    model = TwoTowerRecall(TINY, device="cpu").fit(train)
    return model, train, test, group


# ----------------------------------------------------------------------------- quality and serving rules


def test_learns_clusters_and_beats_popularity(trained):
    model, train, test, group = trained
    users = np.arange(train.n_users)
    idx, sc = model.recommend(users, 10)
    in_cluster = (idx // CLUSTER) == group[:, None]
    assert in_cluster[group == 0].mean() > 0.85 and in_cluster[group == 1].mean() > 0.85
    # scores of in-cluster items above out-of-cluster ones, per user (mean over all unseen items)
    full = model.user_vectors(users) @ model.item_vectors().T
    own = np.where(np.arange(N_ITEMS)[None, :] // CLUSTER == group[:, None], full, np.nan)
    other = np.where(np.arange(N_ITEMS)[None, :] // CLUSTER != group[:, None], full, np.nan)
    assert (np.nanmean(own, axis=1) > np.nanmean(other, axis=1)).mean() > 0.95
    # held-out items: clearly better than popularity (which serves cluster A to everyone)
    pop = np.tile(np.bincount(train.items, minlength=N_ITEMS).astype(float), (users.size, 1))
    pidx, _ = top_k(exclude_seen_(pop, users, train), 10)
    r_tt, r_pop = recall_at(idx, test, 10), recall_at(pidx, test, 10)
    assert r_tt > 1.15 * r_pop, (r_tt, r_pop)
    minority = np.flatnonzero(group == 1)  # popularity serves them the majority's cluster
    r_tt_b, r_pop_b = recall_at(idx, test, 10, minority), recall_at(pidx, test, 10, minority)
    assert r_tt_b > r_pop_b + 0.2, (r_tt_b, r_pop_b)
    # the training curve is recorded and goes down
    curve = model.training_log_["loss_per_epoch"]
    assert len(curve) == TINY.epochs and curve[-1] < curve[0]


def test_seen_items_are_excluded_and_lists_are_full(trained):
    model, train, _, _ = trained
    users = np.arange(train.n_users)
    idx, sc = model.recommend(users, 30)
    for u in users:
        assert not np.isin(idx[u], train.user_items(int(u))).any()
    assert (idx >= 0).all() and np.isfinite(sc).all()
    assert (np.diff(sc, axis=1) <= 1e-6).all()
    assert all(len(set(row)) == 30 for row in idx.tolist())
    # asking for more than the unseen catalogue pads with -1 / nan
    idx, sc = model.recommend(np.array([0]), N_ITEMS)
    n_unseen = N_ITEMS - train.user_items(0).size
    assert (idx[0, :n_unseen] >= 0).all() and (idx[0, n_unseen:] == -1).all() and np.isnan(sc[0, n_unseen:]).all()


def test_batch_recommend_equals_one_by_one(trained):
    model, train, _, _ = trained
    users = np.array([5, 150, 0, 199, 42])
    idx, sc = model.recommend(users, 10)
    for row, u in enumerate(users):
        i1, s1 = model.recommend(np.array([u]), 10)
        np.testing.assert_array_equal(i1[0], idx[row])
        np.testing.assert_allclose(s1[0], sc[row], atol=1e-6)


def test_save_load_round_trip(trained, tmp_path):
    model, train, _, _ = trained
    model.save(tmp_path / "tt")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # atomic: no temporary left
    back = TwoTowerRecall.load(tmp_path / "tt", train)
    users = np.arange(train.n_users)
    a, b = model.recommend(users, 20), back.recommend(users, 20)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)
    assert back.training_log_["loss_per_epoch"] == model.training_log_["loss_per_epoch"]


def test_deterministic_with_seed_and_side_inputs_used(tmp_path):
    train, _, group = clustered(seed=1, n_a=40, n_b=20)
    cfg = TwoTowerConfig(dim=16, hidden=32, history_len=5, epochs=2, batch_size=128, num_threads=1)
    genres = np.zeros((N_ITEMS, 3), np.uint8)
    genres[:CLUSTER, 0] = 1
    genres[CLUSTER:, 1] = 1
    genres[::7, 2] = 1
    years = np.where(np.arange(N_ITEMS) % 5 == 0, 0, 1950 + np.arange(N_ITEMS) % 70)
    sem = np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32)
    mask = np.arange(N_ITEMS) % 9 != 0
    a = TwoTowerRecall(cfg, item_genres=genres, item_years=years, item_embeddings=sem, item_embedding_mask=mask,
                       device="cpu").fit(train)
    b = TwoTowerRecall(cfg, item_genres=genres, item_years=years, item_embeddings=sem, item_embedding_mask=mask,
                       device="cpu").fit(train)
    assert a.training_log_["loss_per_epoch"] == b.training_log_["loss_per_epoch"]
    np.testing.assert_array_equal(a.item_vectors(), b.item_vectors())
    c = TwoTowerRecall(cfg, device="cpu").fit(train)  # no side inputs: a different model
    assert not np.allclose(a.item_vectors(), c.item_vectors())
    assert a.model.item_tower.sem_proj is not None and c.model.item_tower.sem_proj is None
    a.save(tmp_path / "a")
    back = TwoTowerRecall.load(tmp_path / "a", train)
    np.testing.assert_allclose(back._encode_items(), a.item_vectors(), atol=1e-6)  # side inputs persisted


def test_item_features_from_movies():
    ids = IdMap.from_train(np.array([1]), np.array([10, 20, 30]))
    gen, years, vocab = item_features_from_movies(
        ids, np.array([30, 10, 99]), [1999, None, 2001], [["Drama", "Comedy"], [], ["Horror"]]
    )
    assert vocab == ["Comedy", "Drama", "Horror"]  # from the data (99 is not a training item)
    assert gen.tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 0]]
    assert years.tolist() == [0, 0, 1999]


# ----------------------------------------------------------------------------- no leakage in training examples


def test_training_history_only_contains_earlier_items():
    rng = np.random.default_rng(3)
    n = 400
    train = Interactions.from_arrays(rng.integers(0, 7, n), rng.integers(0, 50, n), np.ones(n),
                                     rng.permutation(n), 7, 50)
    rows = np.arange(n)
    users = np.repeat(np.arange(7), np.diff(train.indptr))
    hist, mask = build_histories(train.indptr, train.items, rows, users, 6, pad=50)
    for r in rows:
        u = users[r]
        start = train.indptr[u]
        earlier = train.items[max(start, r - 6) : r]  # strictly before r, same user, most recent 6
        assert hist[r][mask[r]].tolist() == earlier.tolist()
        assert (hist[r][~mask[r]] == 50).all()
        # time order: every history item was rated no later than the example
        assert (train.timestamps[max(start, r - 6) : r] <= train.timestamps[r]).all()


# ----------------------------------------------------------------------------- masked mean pooling


def test_masked_mean_invariant_to_padding_length_and_batch_composition():
    torch.manual_seed(0)
    cfg = TwoTowerConfig(dim=8, hidden=16)
    model = UserTower(cfg, n_users=5, n_items=20)
    with torch.no_grad():
        model.hist_emb.weight[20] = 7.0  # a non-zero padding row: masking must remove it
    emb = model.hist_emb.weight.detach()
    real = torch.tensor([3, 11, 4])
    expected = emb[real].mean(dim=0)
    outs = []
    for pad_len in (0, 2, 9):
        hist = torch.cat([real, torch.full((pad_len,), 20)]).unsqueeze(0)
        mask = torch.cat([torch.ones(3, dtype=torch.bool), torch.zeros(pad_len, dtype=torch.bool)]).unsqueeze(0)
        pooled = model.pooled_history(hist, mask)[0]
        torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-6)
        outs.append(model(torch.tensor([2]), hist, mask, torch.zeros(1, 2)))
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=0, atol=1e-6)
    # the same user inside a batch of other users with longer histories: same vector
    hist = torch.tensor([[3, 11, 4, 20, 20, 20], [1, 2, 5, 6, 7, 8], [9, 20, 20, 20, 20, 20]])
    mask = hist != 20
    batch = model(torch.tensor([2, 0, 4]), hist, mask, torch.zeros(3, 2))
    torch.testing.assert_close(batch[0:1], outs[0], rtol=0, atol=1e-6)
    # an empty history pools to zeros (no division by zero)
    empty = model.pooled_history(torch.full((1, 4), 20), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros_like(empty))


def test_recency_pooling_is_masked_and_invariant_to_padding_and_batch_composition():
    torch.manual_seed(0)
    cfg = TwoTowerConfig(dim=8, hidden=16, history_len=6, pooling="mean_recency", recency_init=0.5)
    tower = UserTower(cfg, n_users=5, n_items=20)
    with torch.no_grad():
        tower.hist_emb.weight[20] = 7.0  # a non-zero padding row: masking must remove it
    emb = tower.hist_emb.weight.detach()
    real = torch.tensor([3, 11, 4])  # oldest first: ages 2, 1, 0 -> initial weights 0.25, 0.5, 1
    w = torch.tensor([0.25, 0.5, 1.0])
    expected = (w[:, None] * emb[real]).sum(dim=0) / w.sum()
    outs = []
    # padding before the items (the build_histories layout) or after them, of any length
    for before, after in ((0, 0), (3, 0), (0, 2), (1, 5)):
        hist = torch.cat([torch.full((before,), 20), real, torch.full((after,), 20)]).unsqueeze(0)
        mask = hist != 20
        torch.testing.assert_close(tower.recency_pooled_history(hist, mask)[0], expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(tower.pooled_history(hist, mask)[0], emb[real].mean(dim=0), rtol=0, atol=1e-6)
        outs.append(tower(torch.tensor([2]), hist, mask, torch.zeros(1, 2)))
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=0, atol=1e-6)
    # the most recent item weighs the most; the weights are learnable parameters
    assert tower.age_logits.requires_grad and tower.age_logits.argmax().item() == 0
    # the same user inside a batch of other users with longer / shorter histories: same vector
    hist = torch.tensor([[20, 20, 20, 3, 11, 4], [1, 2, 5, 6, 7, 8], [9, 20, 20, 20, 20, 20]])
    batch = tower(torch.tensor([2, 0, 4]), hist, hist != 20, torch.zeros(3, 2))
    torch.testing.assert_close(batch[0:1], outs[0], rtol=0, atol=1e-6)
    # more items than the age table: the oldest share the last weight (no index error)
    long = torch.arange(9).unsqueeze(0)
    ages_w = torch.tensor([0.5 ** min(8 - j, 5) for j in range(9)])
    torch.testing.assert_close(tower.recency_pooled_history(long, long >= 0)[0],
                               (ages_w[:, None] * emb[:9]).sum(dim=0) / ages_w.sum(), rtol=0, atol=1e-6)
    # an empty history pools to zeros (no division by zero)
    empty = tower.recency_pooled_history(torch.full((1, 4), 20), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros_like(empty))


def test_user_tower_without_user_id_depends_on_history_only(tmp_path):
    cfg = TwoTowerConfig(dim=8, hidden=16, history_len=5, user_id_embedding=False)
    tower = UserTower(cfg, n_users=5, n_items=20)
    assert tower.user_emb is None
    hist = torch.tensor([[1, 2, 3], [1, 2, 3]])
    out = tower(torch.tensor([0, 4]), hist, hist >= 0, torch.zeros(2, 2))
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)
    train, _, _ = clustered(seed=5, n_a=20, n_b=10)
    model = TwoTowerRecall(TwoTowerConfig(dim=16, hidden=32, history_len=5, epochs=1, batch_size=64,
                                          user_id_embedding=False, num_threads=1), device="cpu").fit(train)
    assert isinstance(model.model, TwoTower)
    model.save(tmp_path / "m")
    back = TwoTowerRecall.load(tmp_path / "m", train)
    np.testing.assert_allclose(back.user_vectors(np.arange(5)), model.user_vectors(np.arange(5)), atol=1e-6)


# ----------------------------------------------------------------------------- example weights


def test_example_weights_use_only_user_counts_and_positions():
    indptr = np.array([0, 2, 2, 8])  # users of 2, 0 and 6 training interactions
    assert example_weights(indptr) is None  # uniform: the plain mean loss
    w = example_weights(indptr, user_power=1.0)
    assert w.shape == (8,) and w.dtype == np.float32
    np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose([w[:2].sum(), w[2:].sum()], [4.0, 4.0], rtol=1e-6)  # every user counts the same
    half = example_weights(indptr, user_power=0.5)
    np.testing.assert_allclose(half[0] / half[2], np.sqrt(6 / 2), rtol=1e-6)
    pos = example_weights(indptr, position_power=1.0)  # later positions weigh more, within each user
    np.testing.assert_allclose(pos / pos[1], [0.5, 1.0] + [j / 6 for j in range(1, 7)], rtol=1e-6)
    # a weight depends on the user's count and the row's position only, never on which items follow:
    # appending interactions to ANOTHER user leaves the relative weights of this user unchanged
    more = example_weights(np.array([0, 2, 2, 12]), user_power=0.5, position_power=1.0)
    base = example_weights(indptr, user_power=0.5, position_power=1.0)
    np.testing.assert_allclose(more[:2] / more[0], base[:2] / base[0], rtol=1e-6)


def test_example_weights_change_the_loss_not_the_inputs():
    rng = np.random.default_rng(6)
    n = 600  # users of very different activity (the weights differ between them)
    train = Interactions.from_arrays(rng.zipf(1.5, n) % 20, rng.integers(0, 50, n), np.ones(n), rng.permutation(n),
                                     20, 50)
    assert np.ptp(np.diff(train.indptr)) > 10
    base = dict(dim=16, hidden=32, history_len=5, epochs=1, batch_size=64, num_threads=1)
    plain = TwoTowerRecall(TwoTowerConfig(**base, user_weight_power=0.0), device="cpu").fit(train)
    weighted = TwoTowerRecall(TwoTowerConfig(**base, user_weight_power=1.0), device="cpu").fit(train)
    assert plain.training_log_["loss_per_epoch"] != weighted.training_log_["loss_per_epoch"]
    # the user side of an example is still its strictly-earlier history
    rows = np.arange(train.items.size)
    users = TwoTowerRecall._row_users(train)
    h1, m1, _ = plain._user_inputs(train, rows, users)
    h2, m2, _ = weighted._user_inputs(train, rows, users)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(m1, m2)


def test_weighted_loss_is_the_weighted_mean_of_row_losses():
    torch.manual_seed(2)
    u = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    items = torch.tensor([0, 1, 2, 3])
    w = torch.tensor([1.0, 2.0, 0.5, 0.5])
    logits = in_batch_logits(u, v, items, temperature=0.2)
    rows = torch.nn.functional.cross_entropy(logits, torch.arange(4), reduction="none")
    torch.testing.assert_close(in_batch_softmax_loss(u, v, items, temperature=0.2, weights=w),
                               (rows * w).sum() / w.sum())
    torch.testing.assert_close(in_batch_softmax_loss(u, v, items, temperature=0.2, weights=torch.ones(4)),
                               in_batch_softmax_loss(u, v, items, temperature=0.2))


def test_serving_user_vectors_do_not_depend_on_batch(trained):
    model, train, _, _ = trained
    alone = model.user_vectors(np.array([7]))
    batch = model.user_vectors(np.array([150, 7, 3, 199]))
    np.testing.assert_allclose(alone[0], batch[1], atol=1e-6)
    items = model.item_vectors()
    assert items.shape == (N_ITEMS, TINY.dim)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- loss: logQ and accidental hits


def test_logq_correction_subtracts_log_q_from_each_column():
    torch.manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    items = torch.tensor([0, 1, 2, 3])
    q = torch.tensor([0.7, 0.1, 0.1, 0.1])  # item 0 is popular
    raw = in_batch_logits(u, v, items, None, temperature=0.1)
    corrected = in_batch_logits(u, v, items, torch.log(q), temperature=0.1)
    torch.testing.assert_close(corrected - raw, -torch.log(q).expand(4, 4))
    # relative to a rare item, the popular item's logit is reduced by log(q_pop / q_rare)
    gap_raw = raw[:, 0] - raw[:, 1]
    gap_corr = corrected[:, 0] - corrected[:, 1]
    torch.testing.assert_close(gap_raw - gap_corr, torch.log(q[0] / q[1]).expand(4))
    # and the loss is the cross-entropy of the corrected logits: a different value than uncorrected
    loss = in_batch_softmax_loss(u, v, items, torch.log(q), temperature=0.1)
    expected = torch.nn.functional.cross_entropy(raw - torch.log(q), torch.arange(4))
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, in_batch_softmax_loss(u, v, items, None, temperature=0.1))


def test_logq_correction_is_used_in_training():
    train, _, _ = clustered(seed=2, n_a=30, n_b=10)
    base = dict(dim=16, hidden=32, history_len=5, epochs=1, batch_size=64, num_threads=1)
    on = TwoTowerRecall(TwoTowerConfig(**base), device="cpu").fit(train)
    off = TwoTowerRecall(TwoTowerConfig(**base, logq_correction=False), device="cpu").fit(train)
    assert on.training_log_["loss_per_epoch"] != off.training_log_["loss_per_epoch"]
    counts = np.bincount(train.items, minlength=N_ITEMS)
    np.testing.assert_allclose(np.exp(on.stats["log_q"])[counts > 0], (counts / counts.sum())[counts > 0])


def test_accidental_hits_are_not_negatives():
    torch.manual_seed(1)
    u = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    v = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    items = torch.tensor([5, 7, 5])  # rows 0 and 2 have the same positive item
    logits = in_batch_logits(u, v, items, temperature=0.5)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[2, 0])
    assert torch.isfinite(logits.diagonal()).all() and torch.isfinite(logits[0, 1]) and torch.isfinite(logits[1, 0])
    # row 0's loss uses only columns 0 and 1: the duplicate of its own item is not a negative
    loss = in_batch_softmax_loss(u, v, items, temperature=0.5)
    raw = u @ v.T / 0.5
    per_row = [
        -torch.log_softmax(raw[0, [0, 1]], 0)[0],
        -torch.log_softmax(raw[1], 0)[1],
        -torch.log_softmax(raw[2, [1, 2]], 0)[1],
    ]
    torch.testing.assert_close(loss, torch.stack(per_row).mean())
    unmasked = in_batch_softmax_loss(u, v, items, temperature=0.5, mask_accidental_hits=False)
    assert unmasked > loss
    # another positive of the SAME user is masked too when user ids are given
    users = torch.tensor([1, 1, 2])
    masked = in_batch_logits(u, v, torch.tensor([5, 7, 9]), temperature=0.5, user_ids=users)
    assert torch.isinf(masked[0, 1]) and torch.isinf(masked[1, 0]) and torch.isfinite(masked[0, 2])


def test_device_auto_resolves_and_ann_config_is_used():
    from movielens_assets.core.device import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda", "mps"}
    train, _, _ = clustered(seed=4, n_a=20, n_b=10)
    cfg = TwoTowerConfig(dim=16, hidden=32, history_len=5, epochs=1, batch_size=64, num_threads=1,
                         ann=AnnConfig(kind="hnsw"))
    model = TwoTowerRecall(cfg, device="auto").fit(train)
    assert model.training_log_["index_kind"] == "hnsw"
    idx, _ = model.recommend(np.arange(train.n_users), 10)
    for u in range(train.n_users):
        assert not np.isin(idx[u], train.user_items(u)).any() and (idx[u] >= 0).all()


def test_config_of_an_older_checkpoint_keeps_its_architecture():
    old = TwoTowerConfig(dim=16).to_dict()
    for key in ("pooling", "recency_init", "user_id_embedding", "user_weight_power", "position_weight_power"):
        old.pop(key)
    back = TwoTowerConfig.from_dict(old)
    assert back.pooling == "mean" and back.user_weight_power == 0.0 and back.user_id_embedding
    assert TwoTowerConfig.from_dict(TwoTowerConfig().to_dict()) == TwoTowerConfig()
    with pytest.raises(ValueError, match="pooling"):
        _build_model(TwoTowerConfig(pooling="max"), n_users=2, n_items=3, n_genres=1, sem_dim=0)


def test_max_examples_per_epoch_bounds_each_epoch(monkeypatch):
    """Each epoch trains on exactly the capped number of examples (a fresh sample); None trains on all."""
    from movielens_assets.core.recall import two_tower

    train, _, _ = clustered(seed=2, n_a=30, n_b=10)
    seen_rows: list[int] = []
    real = two_tower.in_batch_softmax_loss

    def counting(u, *args, **kwargs):
        seen_rows.append(int(u.shape[0]))
        return real(u, *args, **kwargs)

    monkeypatch.setattr(two_tower, "in_batch_softmax_loss", counting)
    cfg = TwoTowerConfig(dim=8, hidden=16, history_len=5, epochs=3, batch_size=64, num_threads=1,
                         max_examples_per_epoch=200)
    model = TwoTowerRecall(cfg, device="cpu").fit(train)
    assert sum(seen_rows) == 3 * 200 and model.training_log_["examples_per_epoch"] == 200
    seen_rows.clear()
    TwoTowerRecall(TwoTowerConfig(dim=8, hidden=16, history_len=5, epochs=1, batch_size=64, num_threads=1),
                   device="cpu").fit(train)
    assert sum(seen_rows) == train.items.size - (train.items.size % 64 == 1)  # a 1-row tail batch is skipped


@pytest.mark.parametrize("sparse", [True, False])
def test_sparse_embeddings_step_only_the_rows_in_the_batch(sparse):
    """With sparse_embeddings, SparseAdam moves only the id-embedding rows of the current batch (the cost of a
    step no longer grows with the catalogue); dense Adam keeps moving rows seen in EARLIER batches through its
    momentum. Every parameter is in exactly one optimizer."""
    from movielens_assets.core.recall.two_tower import _optimizer

    cfg = TwoTowerConfig(dim=8, hidden=16, history_len=4, sparse_embeddings=sparse)
    torch.manual_seed(0)
    model = _build_model(cfg, n_users=10, n_items=12, n_genres=2, sem_dim=0)
    opt = _optimizer(model, cfg)
    groups = [p for o in opt.optimizers for g in o.param_groups for p in g["params"]]
    assert sorted(map(id, groups)) == sorted(id(p) for p in model.parameters())
    assert {type(o).__name__ for o in opt.optimizers} == ({"Adam", "SparseAdam"} if sparse else {"Adam"})

    def step(users, items):
        users, items = torch.tensor(users), torch.tensor(items)
        hist = torch.stack([items, items]).T.contiguous()  # each user's history: its own positive twice
        u = model.user_tower(users, hist, torch.ones_like(hist, dtype=torch.bool), torch.zeros(users.numel(), 2))
        v = model.item_tower(items, torch.zeros(items.numel(), 2), torch.zeros_like(items), torch.zeros(items.numel()),
                             torch.zeros(items.numel(), 0))
        opt.zero_grad(set_to_none=True)
        in_batch_softmax_loss(u, v, items, temperature=0.1).backward()
        opt.step()

    step([0, 1, 2], [0, 1, 2])  # rows 0-2 get moments
    tables = {"user": model.user_tower.user_emb.weight, "hist": model.user_tower.hist_emb.weight,
              "item": model.item_tower.item_emb.weight}
    before = {k: t.detach().clone() for k, t in tables.items()}
    mlp_before = model.user_tower.mlp[0].weight.detach().clone()
    step([5, 6, 7], [5, 6, 7])
    for name, table in tables.items():
        moved = (table.detach() != before[name]).any(dim=1)
        assert moved[[5, 6, 7]].all(), name  # this batch's rows always move
        assert bool(moved[[0, 1, 2]].any()) == (not sparse), name  # earlier rows: only dense Adam's momentum
        assert not moved[[3, 4, 8, 9]].any(), name  # never-seen rows: neither
    assert not torch.equal(model.user_tower.mlp[0].weight, mlp_before)  # the dense layers train either way
