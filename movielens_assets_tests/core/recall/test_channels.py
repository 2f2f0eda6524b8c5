"""Popularity and ItemCF channels: seen items excluded, expected neighbours, save/load; merge."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from movielens_assets.core.recall.base import Interactions
from movielens_assets.core.recall.itemcf import ItemCFRecall
from movielens_assets.core.recall.merge import merge_candidates
from movielens_assets.core.recall.popularity import PopularityRecall

DAY = 86400


def _train(pairs: list[tuple[int, int, int]], n_users: int, n_items: int) -> Interactions:
    u, i, t = (np.array(c) for c in zip(*pairs, strict=True))
    return Interactions.from_arrays(u, i, np.ones(u.size), t, n_users, n_items)


@pytest.fixture
def train() -> Interactions:
    # items 0 and 1 always co-occur; 2 and 3 co-occur; item 4 is the most popular
    pairs = [(0, 0, 1), (0, 1, 2), (0, 4, 3), (1, 0, 1), (1, 1, 2), (1, 4, 9), (2, 2, 1), (2, 3, 2), (2, 4, 3),
             (3, 0, 1), (3, 4, 2), (4, 2, 100 * DAY), (4, 4, 100 * DAY + 1), (5, 3, 1)]
    return _train(pairs, 6, 6)


def _assert_no_seen(idx: np.ndarray, users: np.ndarray, train: Interactions) -> None:
    for row, u in enumerate(users):
        assert not set(idx[row][idx[row] >= 0].tolist()) & set(train.user_items(int(u)).tolist())


def test_popularity_excludes_seen_and_orders_by_count(train, tmp_path):
    model = PopularityRecall().fit(train)
    users = np.arange(6)
    idx, val = model.recommend(users, 3)
    _assert_no_seen(idx, users, train)
    assert idx[5].tolist() == [4, 0, 1]  # counts: 4 -> 5, 0 -> 3, then 1, 2, 3 -> 2 each (smaller id first)
    assert idx[0].tolist() == [2, 3, 5]  # user 0 saw 0, 1, 4
    assert val[5].tolist() == pytest.approx([5 + 5 / 6, 3 + 3 / 6, 2 + 2 / 6])  # count + tie-break share
    model.save(tmp_path / "p")
    assert np.array_equal(PopularityRecall.load(tmp_path / "p", train).recommend(users, 3)[0], idx)


def test_recent_popularity_uses_the_window(train):
    idx, _ = PopularityRecall(window_days=10).fit(train).recommend(np.array([5]), 2)
    # only user 4 (day 100) is inside the 10-day window: items 2 and 4 (1 each, tie -> overall popularity)
    assert idx[0].tolist() == [4, 2]


def test_itemcf_neighbours_exclusion_and_round_trip(train, tmp_path):
    model = ItemCFRecall(n_neighbors=3, window=5, time_decay_days=30.0).fit(train)
    assert model.nbr_idx[0, 0] == 1 and model.nbr_idx[1, 0] == 0  # 0 and 1 always together
    assert model.nbr_idx[3, 0] == 2
    assert 5 not in model.nbr_idx  # never rated: no neighbour, no neighbours of it
    users = np.arange(6)
    idx, val = model.recommend(users, 4)
    _assert_no_seen(idx, users, train)
    assert idx[3, 0] == 1  # user 3 has 0 and 4: item 1 (co-occurs with both) first
    assert idx[5, 0] == 2  # user 5 has 3 -> its neighbour 2
    assert np.all(np.diff(np.nan_to_num(val, nan=-1), axis=1) <= 0)
    model.save(tmp_path / "icf")
    back = ItemCFRecall.load(tmp_path / "icf", train)
    assert np.array_equal(back.recommend(users, 4)[0], idx) and back.params == model.params


def test_itemcf_inverse_activity_and_time_decay():
    # one light user (2 items) and one heavy user (many items) both pair item 0 with another item
    light = [(0, 0, 1), (0, 1, 2)]
    heavy = [(1, 0, 1), (1, 2, 2)] + [(1, 3 + j, 3 + j) for j in range(20)]
    model = ItemCFRecall(window=50, time_decay_days=None).fit(_train(light + heavy, 2, 23))
    sims = dict(zip(model.nbr_idx[0].tolist(), model.nbr_sim[0].tolist(), strict=True))
    assert sims[1] > sims[2]  # heavy users count less
    far = [(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 2, 400 * DAY)]
    model = ItemCFRecall(window=5, time_decay_days=30.0).fit(_train(far, 2, 3))
    assert model.nbr_idx[0, 0] == 1  # the pair close in time wins
    # histories truncated to the last `max_history` items: item 0 no longer pairs with item 2
    model = ItemCFRecall(max_history=2, window=5).fit(_train([(0, 0, 1), (0, 1, 2), (0, 2, 3)], 1, 3))
    assert model.nbr_idx[0].tolist() == [-1] * 100 and model.nbr_idx[1, :2].tolist() == [2, -1]


def _cands(rows):
    u, m, r = zip(*rows, strict=True)
    return pa.table({"user_id": list(u), "movie_id": list(m), "rank": list(r), "score": [1.0] * len(u)})


def test_merge_rrf_and_quota_keep_provenance():
    a = _cands([(1, 10, 1), (1, 11, 2), (1, 12, 3)])
    b = _cands([(1, 20, 1), (1, 11, 2), (1, 21, 3)])
    rrf = merge_candidates({"a": a, "b": b}, method="rrf", size=10).to_pylist()
    assert rrf[0]["movie_id"] == 11  # 2/62 beats 1/61
    assert rrf[0]["channels"] == ["a", "b"] and rrf[0]["channel_ranks"] == [2, 2]
    assert rrf[0]["rank_a"] == 2 and rrf[0]["rank_b"] == 2
    assert [r["movie_id"] for r in rrf] == [11, 10, 20, 12, 21] and [r["rank"] for r in rrf] == [1, 2, 3, 4, 5]
    quota = merge_candidates({"a": a, "b": b}, method="quota", size=4).to_pylist()
    # round robin a1, b1, a2 (= 11, also b2: not repeated), a3 / b3
    assert [r["movie_id"] for r in quota] == [10, 20, 11, 12]
    assert quota[1]["channels"] == ["b"] and quota[1]["rank_a"] is None
    with pytest.raises(ValueError):
        merge_candidates({"A b": a})


def test_zero_weight_keeps_provenance_but_proposes_nothing():
    a = _cands([(1, 10, 1), (1, 11, 2)])
    b = _cands([(1, 11, 1), (1, 20, 2)])
    rows = merge_candidates({"a": a, "b": b}, method="rrf", size=10, weights={"a": 1.0, "b": 0.0}).to_pylist()
    assert [r["movie_id"] for r in rows] == [10, 11]  # 20 came from b only
    assert rows[1]["channels"] == ["a", "b"] and rows[1]["rank_b"] == 1  # b's rank of 11 is kept
    quota = merge_candidates({"a": a, "b": b}, method="quota", size=10, weights={"a": 1.0, "b": 0.0}).to_pylist()
    assert [r["movie_id"] for r in quota] == [10, 11]
    with pytest.raises(ValueError, match="positive sum"):
        merge_candidates({"a": a}, weights={"a": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        merge_candidates({"a": a, "b": b}, weights={"a": 1.0, "b": -1.0})


def _recall_of_merged(merged: pa.Table, users, target: dict[int, set[int]], k: int) -> np.ndarray:
    """Plain statement of Recall@k of a merged table (rank <= k) per user, for the reference."""
    got: dict[int, set[int]] = {}
    for row in merged.to_pylist():
        if row["rank"] <= k:
            got.setdefault(row["user_id"], set()).add(row["movie_id"])
    return np.array([len(target[u] & got.get(u, set())) / len(target[u]) for u in users])


@pytest.mark.parametrize("weights", [{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 2.0, "b": 0.25, "c": 0.0},
                                     {"a": 0.0, "b": 1.0, "c": 0.0}, {"a": 1.0, "b": 4.0, "c": 0.5}])
def test_rank_matrix_recall_equals_the_merged_list(weights):
    """The tuner's NumPy merge ranks exactly as `merge_candidates` (ties included: equal RRF scores go to the
    first proposing channel, then the smaller movie id), so its Recall@k equals the merged file's."""
    from movielens_assets.core.recall.merge import RankMatrix

    rng = np.random.default_rng(7)
    tables = {name: _cands([(u, int(m), r) for u in range(30) for r, m in enumerate(
        rng.choice(40, size=size, replace=False), start=1)]) for name, size in (("a", 12), ("b", 8), ("c", 15))}
    target = {u: set(rng.choice(45, size=3, replace=False).tolist()) for u in range(30)}
    users = np.arange(30)
    tu = np.repeat(users, 3)
    ti = np.array([m for u in users for m in sorted(target[u])])
    matrix = RankMatrix.build(tables, users, tu, ti)
    got = matrix.recall(weights, ks=(5, 10))
    merged = merge_candidates(tables, method="rrf", size=50, weights=weights)
    for j, k in enumerate((5, 10)):
        np.testing.assert_allclose(got[:, j], _recall_of_merged(merged, users, target, k))


def _tuning_case(n_users: int, hit_rank: int):
    """`good` finds one of each user's 2 target items at `hit_rank` (after junk); `noise` proposes only junk."""
    from movielens_assets.core.recall.merge import RankMatrix

    head = [500 + j for j in range(hit_rank - 1)]
    good = _cands([(u, m, r) for u in range(n_users)
                   for r, m in enumerate([*head, 100 + u, *range(600, 640)], start=1)])
    noise = _cands([(u, 900 + r, r) for u in range(n_users) for r in range(1, 40)])
    users = np.arange(n_users)
    tu = np.repeat(users, 2)
    ti = np.array([m for u in users for m in (100 + u, 200 + u)])
    return RankMatrix.build({"good": good, "noise": noise}, users, tu, ti)


def test_tuning_keeps_equal_weights_unless_a_move_is_significant():
    from movielens_assets.core.recall.merge import tune_rrf_weights

    # nothing to gain: `good`'s hit stays in the top 2 under any weights that keep `good`
    flat = tune_rrf_weights(_tuning_case(200, hit_rank=1), ks=(2, 20))
    assert flat["weights"] == {"good": 1.0, "noise": 1.0} and len(flat["trace"]) == 1
    # a hit at rank 2 enters the top 2 only when `good` outweighs the junk: every user gains, a significant move
    tuned = tune_rrf_weights(_tuning_case(200, hit_rank=2), ks=(2, 20))
    assert tuned["weights"]["good"] > tuned["weights"]["noise"]
    assert tuned["recall@2"] == 0.5 > tuned["equal"]["recall@2"] == 0.0
    assert all(step["gain"] > 2.0 * step["se"] for step in tuned["trace"][1:])
    assert set(tuned["single"]) == {"good", "noise"}
    # the same gain on a few users only, diluted by users who lose: not significant, nothing moves
    mixed = _mixed_case()
    assert tune_rrf_weights(mixed, ks=(2, 20))["weights"] == {"good": 1.0, "noise": 1.0}


def _mixed_case():
    """Half the users gain from more weight on `good` (its hit at rank 2), the other half lose (their hit is
    `noise`'s rank 1, behind `good`'s junk when `good` weighs more): zero mean gain."""
    from movielens_assets.core.recall.merge import RankMatrix

    n = 100
    good = _cands([(u, m, r) for u in range(n) for r, m in enumerate([500, 100 + u if u % 2 else 700 + u], start=1)])
    noise = _cands([(u, m, r) for u in range(n) for r, m in enumerate([200 + u if not u % 2 else 900, 901], start=1)])
    users = np.arange(n)
    ti = np.array([100 + u if u % 2 else 200 + u for u in users])
    return RankMatrix.build({"good": good, "noise": noise}, users, users, ti)


def test_tuning_falls_back_to_the_best_channel_alone():
    """When one channel alone beats the blend (here: `good` alone keeps its 2nd-ranked hit inside the top 2,
    which an equal blend with `noise`'s junk pushes out; the grid allows no other move), the result is that
    channel's list."""
    from movielens_assets.core.recall.merge import tune_rrf_weights

    tuned = tune_rrf_weights(_tuning_case(200, hit_rank=2), ks=(2,), grid=(1.0,))
    assert tuned["weights"] == {"good": 1.0, "noise": 0.0}
    assert tuned["trace"][-1].get("single_channel") is True
    assert tuned["recall@2"] == tuned["single"]["good"]["recall@2"] > tuned["equal"]["recall@2"]


@pytest.mark.parametrize("method", ["rrf", "quota"])
def test_merge_candidate_files_by_user_chunks_equals_the_whole_merge(tmp_path, method):
    """Merging the channel FILES a chunk of users at a time gives exactly the merge of the whole tables (the
    merge is per user), row for row, whatever the chunk size; users that only some channels answer, and
    chunk edges that fall between a channel's row groups, included."""
    import pyarrow.parquet as pq

    from movielens_assets.core.recall.merge import merge_candidate_files

    rng = np.random.default_rng(3)
    tables = {}
    for name, users in (("a", range(0, 40)), ("b", range(5, 45, 2)), ("c", range(30, 50))):
        rows = [(u, int(m), r) for u in users
                for r, m in enumerate(rng.choice(60, size=8, replace=False), start=1)]
        tables[name] = _cands(rows)
        pq.write_table(tables[name], tmp_path / f"{name}.parquet", row_group_size=37)
    kwargs = {"method": method, "size": 6, "weights": {"a": 1.0, "b": 2.0, "c": 0.5}}
    whole = merge_candidates(tables, **kwargs)
    paths = {name: tmp_path / f"{name}.parquet" for name in tables}
    for chunk in (1, 7, 50, 1000):
        out = tmp_path / f"merged_{chunk}.parquet"
        rows = merge_candidate_files(paths, out, users_per_chunk=chunk, **kwargs)
        got = pq.read_table(out)
        assert rows == whole.num_rows == got.num_rows
        assert got.to_pylist() == whole.to_pylist()
        assert got.schema == whole.schema


def test_merge_candidate_files_failure_keeps_the_previous_output(tmp_path):
    import pyarrow.parquet as pq

    from movielens_assets.core.recall.merge import merge_candidate_files

    pq.write_table(_cands([(1, 10, 1), (2, 11, 1)]), tmp_path / "a.parquet")
    out = tmp_path / "merged.parquet"
    assert merge_candidate_files({"a": tmp_path / "a.parquet"}, out) == 2
    before = out.read_bytes()
    with pytest.raises(Exception, match="missing.parquet"):
        merge_candidate_files({"a": tmp_path / "a.parquet", "b": tmp_path / "missing.parquet"}, out)
    with pytest.raises(ValueError, match="users_per_chunk"):
        merge_candidate_files({"a": tmp_path / "a.parquet"}, out, users_per_chunk=0)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "merged.parquet"]


def test_quota_gives_equal_slots_to_the_first_channel():
    """Equal slot keys: the item proposed by the earlier channel comes first (a deterministic tie), whatever
    its movie id — X is proposed by a and c at slot 2, Y by b at slot 2."""
    a = _cands([(1, 10, 1), (1, 99, 2)])
    b = _cands([(1, 20, 1), (1, 50, 2)])
    c = _cands([(1, 30, 1), (1, 99, 2)])
    for _ in range(20):
        rows = merge_candidates({"a": a, "b": b, "c": c}, method="quota", size=10).to_pylist()
        assert [r["movie_id"] for r in rows] == [10, 20, 30, 99, 50]
        assert rows[3]["channels"] == ["a", "c"]
