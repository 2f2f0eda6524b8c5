"""The sequence store: the source rows in order, window / test starts, history windows, persistence."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from movielens_assets.core.ranking.sequences import NO_TIME, SequenceStore
from movielens_assets_tests.core.ranking import tiny_protocol


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_protocol.build(tmp_path_factory.mktemp("seq"))


def test_store_holds_exactly_train_in_order_with_the_window_flagged(tiny):
    con = duckdb.connect()
    split = tiny.root / "splits" / "last_n"
    train = con.execute(f"SELECT user_id, movie_id, rating, epoch(timestamp)::BIGINT FROM '{split}/train.parquet' "
                        "ORDER BY user_id, timestamp, movie_id").fetchall()
    s = tiny.store
    users = np.repeat(s.user_ids, np.diff(s.indptr))
    got = list(zip(users.tolist(), s.movie_id.tolist(), s.rating.tolist(), s.ts.tolist(), strict=True))
    assert got == [(u, m, float(r), t) for u, m, r, t in train]
    window = set(con.execute(f"SELECT user_id, movie_id FROM '{split}/window/valid.parquet'").fetchall())
    flagged = {(u, m) for (u, m, _, _), w in zip(got, s.in_window.tolist(), strict=True) if w}
    assert flagged == window and window
    firsts = dict(con.execute(f"SELECT user_id, min(epoch(timestamp))::BIGINT FROM '{split}/window/valid.parquet' "
                              "GROUP BY 1").fetchall())
    tests = dict(con.execute(f"SELECT user_id, min(epoch(timestamp))::BIGINT FROM '{split}/test.parquet' "
                             "GROUP BY 1").fetchall())
    for i, u in enumerate(s.user_ids.tolist()):
        assert s.window_start[i] == firsts.get(u, NO_TIME) and s.test_start[i] == tests.get(u, NO_TIME)
        assert s.window_start[i] == NO_TIME or s.window_start[i] <= s.test_start[i]


def test_history_is_the_last_rows_before_the_position_right_aligned(tiny):
    s = tiny.store
    u = 3
    start, end = s.indptr[u], s.indptr[u + 1]
    movies, ratings, ts, mask = s.history(np.array([u, u, u]), np.array([0, 2, end - start]), length=4)
    assert not mask[0].any() and (movies[0] == 0).all()
    assert mask[1].tolist() == [False, False, True, True]
    assert movies[1, 2:].tolist() == s.movie_id[start : start + 2].tolist()
    assert movies[2].tolist() == s.movie_id[end - 4 : end].tolist() and mask[2].all()
    assert ratings[2].tolist() == s.rating[end - 4 : end].tolist() and ts[2].tolist() == s.ts[end - 4 : end].tolist()
    assert s.user_index(np.array([s.user_ids[u], 10_000])).tolist() == [u, -1]


def test_save_load_round_trip_and_missing_store(tiny, tmp_path):
    tiny.store.save(tmp_path / "store", meta={"protocol": "last_n"})
    loaded = SequenceStore.load(tmp_path / "store")
    for name in ("user_ids", "indptr", "movie_id", "rating", "ts", "in_window", "window_start", "test_start"):
        assert np.array_equal(getattr(loaded, name), getattr(tiny.store, name)), name
    with pytest.raises(FileNotFoundError, match="materialize `user_sequences`"):
        SequenceStore.load(tmp_path / "nothing")
    # pickled (to a worker process): a mapped store travels as its directory, an in-memory one as its arrays
    import pickle

    mapped = pickle.dumps(loaded)
    assert len(mapped) < 1000 and isinstance(pickle.loads(mapped).movie_id, np.memmap)
    copied = pickle.loads(pickle.dumps(tiny.store))
    for name in ("user_ids", "indptr", "movie_id", "test_start"):
        assert np.array_equal(getattr(pickle.loads(mapped), name), getattr(tiny.store, name))
        assert np.array_equal(getattr(copied, name), getattr(tiny.store, name))


def test_rows_out_of_order_are_refused():
    from movielens_assets.core.ranking.sequences import _check_order

    indptr = np.array([0, 3, 5])
    _check_order(indptr, np.array([1, 2, 2, 0, 9]), np.array([5, 1, 3, 7, 1]))  # user 2 starts earlier: fine
    with pytest.raises(RuntimeError, match="rows 1 and 2"):
        _check_order(indptr, np.array([1, 2, 2, 0, 9]), np.array([5, 3, 1, 7, 1]))  # tie not by movie
    with pytest.raises(RuntimeError, match="rows 3 and 4"):
        _check_order(indptr, np.array([1, 2, 2, 9, 0]), np.array([5, 1, 3, 7, 1]))
