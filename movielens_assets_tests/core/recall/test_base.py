from __future__ import annotations

import numpy as np

from movielens_assets.core.recall.base import IdMap, Interactions, exclude_seen_, top_k


def test_id_map_round_trip_and_unknown_ids(tmp_path):
    m = IdMap.from_train(np.array([50, 7, 7, 900]), np.array([3, 100, 42]))
    assert m.n_users == 3 and m.n_items == 3
    assert m.user_index(np.array([7, 50, 900, 8])).tolist() == [0, 1, 2, -1]
    idx = m.item_index(np.array([100, 3, 42, 5, 1000]))
    assert idx.tolist() == [2, 0, 1, -1, -1]
    assert m.item_raw(idx).tolist() == [100, 3, 42, -1, -1]
    m.save(tmp_path / "ids")
    back = IdMap.load(tmp_path / "ids")
    assert back.user_ids.tolist() == [7, 50, 900] and back.item_ids.tolist() == [3, 42, 100]


def test_seen_items_excluded_and_top_k_order():
    train = Interactions.from_arrays(
        users=np.array([1, 0, 0, 1]), items=np.array([2, 0, 3, 0]), ratings=np.ones(4),
        timestamps=np.array([5, 9, 1, 2]), n_users=2, n_items=5,
    )
    assert train.user_items(0).tolist() == [3, 0]  # sorted by time
    scores = np.tile(np.array([5.0, 4.0, 3.0, 2.0, 1.0]), (2, 1))
    exclude_seen_(scores, np.array([0, 1]), train)
    idx, val = top_k(scores, 4)
    assert idx.tolist() == [[1, 2, 4, -1], [1, 3, 4, -1]]
    assert np.isnan(val[:, 3]).all() and val[0, 0] == 4.0
