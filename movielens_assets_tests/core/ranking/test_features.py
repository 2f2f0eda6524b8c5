"""The feature engine: point-in-time (no later rating changes any value), absent inputs stay absent, values."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.ranking.features import (
    FEATURE_GROUPS,
    SEMANTIC_FEATURES,
    TMDB_CROSS_FEATURES,
    TMDB_FEATURES,
    recall_feature_names,
)
from movielens_assets_tests.core.ranking import tiny_protocol


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_protocol.build(tmp_path_factory.mktemp("feat"))


def _queries(tiny, cutoff: int, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, tiny.store.n_users, n)
    movies = rng.integers(1, 41, n)
    return users, movies, np.full(n, cutoff, dtype=np.int64)


def _features(tiny, users, movies, cutoffs):
    chunk = tiny.engine.chunk(tiny.store, np.arange(tiny.store.n_users))
    rng = np.random.default_rng(5)
    channels = {name: rng.random(users.size) for name in recall_feature_names(tiny_protocol.CHANNELS)}
    return tiny.engine.compute(chunk, users, movies, cutoffs, channels)


@pytest.mark.parametrize("quantile", [0.3, 0.6, 0.9])
def test_changing_any_later_rating_changes_no_feature(tmp_path, quantile):
    """Every rating value at or after the cut-off is changed (5.5 - r: every such rating moves): every feature
    of every row at that cut-off stays identical. Changing EARLIER ratings does change features (the test can
    fail)."""
    rows = tiny_protocol.ratings_rows()
    ts = np.array([r[3] for r in rows])
    cutoff = int(np.quantile(ts, quantile))
    base = tiny_protocol.build(tmp_path / "base", rows)
    users, movies, cutoffs = _queries(base, cutoff)
    expected = _features(base, users, movies, cutoffs)
    changed = []
    for u, m, r, t in rows:
        if t >= cutoff:
            r = 5.5 - r  # every later rating flips
        changed.append((u, m, r, t))
    later = tiny_protocol.build(tmp_path / "later", changed)
    got = _features(later, users, movies, cutoffs)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    earlier = [(u, m, 5.5 - r if t < cutoff and i % 3 == 0 else r, t) for i, (u, m, r, t) in enumerate(rows)]
    moved = _features(tiny_protocol.build(tmp_path / "earlier", earlier), users, movies, cutoffs)
    assert any(not np.array_equal(moved[n], expected[n], equal_nan=True) for n in expected)


def test_the_label_is_never_a_feature(tiny):
    names = tiny.engine.feature_names
    allowed = ({n for group in FEATURE_GROUPS.values() for n in group}
               | set(recall_feature_names(tiny_protocol.CHANNELS)))
    assert set(names) <= allowed and len(set(names)) == len(names)
    assert not {"rating", "watch", "like", "label"} & set(names)
    assert set(names) == allowed  # with TMDb data and embeddings every group is produced


def test_without_tmdb_or_embeddings_those_features_are_absent(tmp_path):
    plain = tiny_protocol.build(tmp_path / "plain", tmdb=False, semantic=False)
    names = set(plain.engine.feature_names)
    assert not names & set(TMDB_FEATURES + TMDB_CROSS_FEATURES + SEMANTIC_FEATURES)
    users, movies, cutoffs = _queries(plain, 1_520_000_000, 50)
    out = plain.engine.compute(plain.engine.chunk(plain.store, np.arange(plain.store.n_users)), users, movies, cutoffs)
    assert set(out) == names and all(v.dtype == np.float32 and v.size == 50 for v in out.values())
    assert np.isnan(out["ch_itemcf_rank"]).all()  # no channel values given: absent


def test_values_against_a_plain_statement(tiny):
    """A few features recomputed with loops over the raw rows (strictly before the cut-off)."""
    s = tiny.store
    users_raw = np.repeat(s.user_ids, np.diff(s.indptr))
    u = 4
    cutoff = int(s.ts[s.indptr[u] + 5])  # the 6th row's time: rows at that second are NOT before it
    movie = int(s.movie_id[s.indptr[u + 1] - 1])  # a movie the user rates later
    out = _features(tiny, np.array([u]), np.array([movie]), np.array([cutoff]))
    mine = (users_raw == s.user_ids[u]) & (s.ts < cutoff)
    assert out["u_log_count"][0] == pytest.approx(np.log1p(mine.sum()))
    assert out["u_mean_rating"][0] == pytest.approx(s.rating[mine].mean())
    assert out["u_like_rate"][0] == pytest.approx((s.rating[mine] >= 4).mean())
    assert out["u_days_since_last"][0] == pytest.approx((cutoff - s.ts[mine].max()) / 86400, rel=1e-5)
    item_rows = (s.movie_id == movie) & (s.ts < cutoff)
    assert out["i_log_count"][0] == pytest.approx(np.log1p(item_rows.sum()))
    if item_rows.any():
        assert out["i_mean_rating"][0] == pytest.approx(s.rating[item_rows].mean())
        assert out["x_rating_dev"][0] == pytest.approx(s.rating[item_rows].mean() - s.rating[mine].mean(), rel=1e-5)
    # director match: liked rows of the user before the cut-off whose movie shares a director with `movie`
    items = tiny.items
    pos = items.index(np.array([movie]))[0]
    directors = set(items.directors[pos][items.directors[pos] >= 0].tolist())
    liked = s.movie_id[mine & (s.rating >= 4)]
    expected = sum(len(directors & set(items.directors[items.index(np.array([m]))[0]].tolist())) for m in liked)
    assert (out["x_director_liked"][0] == expected) if directors else np.isnan(out["x_director_liked"][0])


def test_no_history_gives_absent_user_statistics(tiny):
    s = tiny.store
    first_ts = int(s.ts[s.indptr[2]])
    out = _features(tiny, np.array([2]), np.array([1]), np.array([first_ts]))
    assert out["u_log_count"][0] == 0.0
    for name in ("u_mean_rating", "u_std_rating", "u_like_rate", "u_days_since_last", "x_genre_affinity",
                 "x_semantic_sim", "x_rating_dev"):
        assert np.isnan(out[name][0]), name


def test_user_cutoff_groups_match_numpy_unique_in_any_row_order():
    from movielens_assets.core.ranking.features import _groups

    rng = np.random.default_rng(5)
    users = rng.integers(0, 50, 3000)
    cutoffs = rng.integers(1_600_000_000, 1_600_000_000 + 40, 3000)
    pairs, inverse = np.unique(np.stack([users, cutoffs]), axis=1, return_inverse=True)
    for order in (np.arange(3000), np.lexsort((cutoffs, users))):  # shuffled, then sorted (the boundary path)
        g_users, g_cutoffs, row_group = _groups(users[order], cutoffs[order])
        assert np.array_equal(g_users, pairs[0]) and np.array_equal(g_cutoffs, pairs[1])
        assert np.array_equal(row_group, inverse.reshape(-1)[order])
    assert _groups(np.zeros(0, np.int64), np.zeros(0, np.int64))[2].size == 0
