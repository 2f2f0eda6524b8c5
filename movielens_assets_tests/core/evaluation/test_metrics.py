"""Metrics against a worked example computed by hand (numbers in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movielens_assets.core.evaluation.metrics import bootstrap_ci, evaluate, per_user_metrics, rec_matrix_from_ranks

# Users 10, 20, 30. Test (user, movie, rating): (10,1,5) (10,2,3) (20,3,4) (30,4,2).
# Lists: 10 -> [2, 5, 1]; 20 -> [6, 7, 8]; 30 -> [4, -, -].
USERS = np.array([10, 20, 30])
REC = np.array([[2, 5, 1], [6, 7, 8], [4, -1, -1]])
T_USERS, T_ITEMS, T_RATINGS = np.array([10, 10, 20, 30]), np.array([1, 2, 3, 4]), np.array([5.0, 3.0, 4.0, 2.0])
POP = (np.array([1, 2, 4, 5, 6, 7, 8]), np.array([10, 20, 5, 1, 0, 3, 2]))  # movie 3 unknown in training
IDCG2 = 1 + 1 / math.log2(3)  # 1.63093


def _eval(**kw):
    return evaluate(REC, USERS, T_USERS, T_ITEMS, T_RATINGS, item_popularity=POP, n_catalogue=10, ks=(2, 3),
                    n_boot=200, **kw)


def test_hand_computed_any_relevance():
    m = _eval()
    assert m["users"] == 3
    # user 10: hits at ranks 1 and 3 of 2 relevant; user 20: none; user 30: hit at rank 1 of 1.
    assert m["hr@2"] == pytest.approx(2 / 3)
    assert m["recall@2"] == pytest.approx((0.5 + 0 + 1) / 3)  # 0.5
    assert m["ndcg@2"] == pytest.approx((1 / IDCG2 + 0 + 1) / 3)  # (0.613147 + 1) / 3 = 0.537716
    assert m["ndcg@2"] == pytest.approx(0.537716, abs=1e-6)
    assert m["hr@3"] == pytest.approx(2 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["ndcg@3"] == pytest.approx(((1 + 0.5) / IDCG2 + 1) / 3)  # (0.919721 + 1) / 3 = 0.639907
    assert m["ndcg@3"] == pytest.approx(0.639907, abs=1e-6)


def test_hand_computed_liked_relevance_and_catalogue_metrics():
    m = _eval()
    # rating >= 4: user 10 -> {1}, user 20 -> {3}; user 30 has none and is not averaged.
    assert m["users_liked"] == 2
    assert m["hr@2_liked"] == 0.0 and m["recall@2_liked"] == 0.0
    assert m["hr@3_liked"] == pytest.approx(0.5)
    assert m["recall@3_liked"] == pytest.approx(0.5)
    assert m["ndcg@3_liked"] == pytest.approx(0.25)  # user 10: 1/log2(4) = 0.5 over IDCG 1; user 20: 0
    # top-2 items {2, 5, 6, 7, 4} of 10 catalogue items; top-3 adds 1 and 8
    assert m["coverage@2"] == pytest.approx(0.5) and m["coverage@3"] == pytest.approx(0.7)
    assert m["avg_popularity@2"] == pytest.approx((20 + 1 + 0 + 3 + 5) / 5)  # 5.8
    assert m["avg_popularity@3"] == pytest.approx((29 + 10 + 2) / 7)  # 5.857143
    lo, hi = m["recall@3_ci"]
    assert 0.0 <= lo <= m["recall@3"] <= hi <= 1.0


def test_every_eligible_user_counts_even_without_recommendations():
    m = evaluate(np.full((3, 3), -1), USERS, T_USERS, T_ITEMS, T_RATINGS, item_popularity=POP, n_catalogue=10,
                 ks=(2, 3), n_boot=50)
    assert m["users"] == 3 and m["recall@3"] == 0.0 and m["coverage@3"] == 0.0


def test_per_user_metrics_shapes_and_ndcg_ideal_capped_at_k():
    hits = np.array([[True, True, True, False]])
    out = per_user_metrics(hits, np.array([5]), ks=(2, 4))
    assert out["recall@2"][0] == pytest.approx(2 / 5)  # recall divides by |R_u| (5), not min(K, |R_u|)
    assert out["ndcg@2"][0] == pytest.approx(1.0)  # ideal DCG over min(K, |R_u|) = 2 positions
    assert out["hr@4"][0] == 1.0


def test_bootstrap_ci():
    const = np.full((100, 1), 0.3)
    assert bootstrap_ci(const, n_boot=100)[0].tolist() == pytest.approx([0.3, 0.3])
    coin = (np.arange(400) % 2).astype(float)[:, None]  # mean 0.5, se 0.025 -> 95% CI ~ +-0.049
    lo, hi = bootstrap_ci(coin, n_boot=2000, seed=1, chunk_elems=100_000)[0]
    assert 0.44 < lo < 0.47 and 0.53 < hi < 0.56
    assert np.isnan(bootstrap_ci(np.zeros((0, 2)))).all()


def test_rec_matrix_from_ranks():
    rec = rec_matrix_from_ranks(np.array([10, 20]), np.array([20, 10, 10, 99, 10]), np.array([7, 5, 6, 1, 9]),
                                np.array([1, 2, 1, 1, 5]), 3)
    assert rec.tolist() == [[6, 5, -1], [7, -1, -1]]


def test_auc_and_gauc_on_a_hand_computed_example():
    """u1: scores [0.9+, 0.8-, 0.7+, 0.1-]: positive-negative pairs 0.9>0.8, 0.9>0.1, 0.7<0.8, 0.7>0.1 -> AUC
    3/4. u2: [0.5+, 0.5-, 0.2-]: pairs 0.5=0.5 (a tie counts 1/2), 0.5>0.2 -> AUC (0.5 + 1) / 2 = 3/4. u3: only
    negatives -> left out. GAUC (impression-weighted) = (4 * 3/4 + 3 * 3/4) / 7 = 0.75; with u2's positive at
    0.6 (no tie) u2's AUC is 1: GAUC = (4 * 3/4 + 3 * 1) / 7 = 6/7."""
    from movielens_assets.core.evaluation.metrics import auc, gauc, logloss

    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.5, 0.5, 0.2, 0.3, 0.4])
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 0, 0])
    users = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3])
    value, used = gauc(scores, labels, users)
    assert used == 2 and value == pytest.approx(0.75)
    value, _ = gauc(np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.5, 0.2, 0.3, 0.4]), labels, users)
    assert value == pytest.approx(6 / 7)
    # pooled AUC over all 9: 3 positives x 6 negatives; count by hand
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert auc(scores, labels) == pytest.approx(expected)
    assert np.isnan(auc(scores[:2], np.array([1, 1]))) and gauc(scores[7:], labels[7:], users[7:])[1] == 0
    assert logloss(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(np.log(2))


def test_gauc_equals_the_per_group_reference_on_random_data():
    from movielens_assets.core.evaluation.metrics import auc, gauc

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, 2000)
    labels = rng.random(2000) < 0.2
    scores = np.round(rng.random(2000) + labels * 0.3, 2)  # rounded: many ties
    ref_num = ref_den = 0.0
    for g in np.unique(groups):
        m = groups == g
        if 0 < labels[m].sum() < m.sum():
            ref_num += m.sum() * auc(scores[m], labels[m])
            ref_den += m.sum()
    assert gauc(scores, labels, groups)[0] == pytest.approx(ref_num / ref_den)


def test_group_aucs_and_the_paired_gain_by_hand():
    from movielens_assets.core.evaluation.metrics import group_aucs, paired_gain

    # group 7: its positive (0.2) below both negatives (0.9, 0.5) -> AUC 0; group 3: positive on top -> 1.0;
    # group 5: no negative -> left out
    scores = np.array([0.2, 0.9, 0.5, 0.1, 0.8, 0.3, 0.4])
    labels = np.array([1, 0, 0, 0, 1, 1, 1])
    groups = np.array([7, 7, 7, 3, 3, 5, 5])
    ids, aucs, n = group_aucs(scores, labels, groups)
    assert ids.tolist() == [3, 7] and aucs.tolist() == [1.0, 0.0] and n.tolist() == [2.0, 3.0]
    # paired gain, weights 2 and 3: d = (0.5 - 1.0, 0.5 - 0.0) = (-0.5, 0.5); mean = (-1 + 1.5) / 5 = 0.1;
    # SE = sqrt(2^2 (-0.6)^2 + 3^2 (0.4)^2) / 5 = sqrt(1.44 + 1.44) / 5
    gain, se = paired_gain(np.array([0.5, 0.5]), aucs, n)
    assert gain == pytest.approx(0.1) and se == pytest.approx(np.sqrt(2.88) / 5)
    assert np.isnan(paired_gain(np.zeros(0), np.zeros(0), np.zeros(0))[0])
    with pytest.raises(ValueError, match="equal shapes"):
        paired_gain(np.zeros(2), np.zeros(3), np.ones(2))
