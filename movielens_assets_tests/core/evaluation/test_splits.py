"""Splits: the last_n rule, no time leakage, the global cut, one IdMap from train."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from movielens_assets.core.evaluation.splits import (
    load_split,
    load_stage,
    load_targets,
    protocol_stages,
    split_global_time,
    split_last_n,
)


def _write_ratings(path, rows, tie_order="ASC"):
    """Parquet sorted by (user, timestamp) like the ingested table; `tie_order` orders equal timestamps."""
    con = duckdb.connect()
    values = ", ".join(f"({u}, {m}, {r}, to_timestamp({t}))" for u, m, r, t in rows)
    con.execute(f"""COPY (SELECT u::INTEGER AS user_id, m::INTEGER AS movie_id, r::FLOAT AS rating,
                    t::TIMESTAMP AS timestamp FROM (VALUES {values}) v(u, m, r, t) ORDER BY 1, 4, 2 {tie_order})
                    TO '{path}' (FORMAT parquet)""")
    return path


@pytest.fixture
def ratings(tmp_path):
    """User 1: 5 ratings (two tied at t=40); user 2: exactly 3 (too few: train only); user 3: 4 ratings."""
    rows = [
        (1, 10, 4.0, 10), (1, 11, 3.0, 20), (1, 12, 5.0, 30), (1, 13, 2.0, 40), (1, 14, 4.5, 40),
        (2, 10, 4.0, 15), (2, 12, 1.0, 25), (2, 15, 3.0, 35),
        (3, 11, 5.0, 5), (3, 15, 4.0, 50), (3, 16, 3.0, 60), (3, 10, 2.0, 70),
    ]
    return _write_ratings(tmp_path / "ratings.parquet", rows)


def _rows(con, path):
    return sorted(con.execute(f"SELECT user_id, movie_id FROM read_parquet('{path}')").fetchall())


def test_last_n_rule_and_no_leakage(ratings, tmp_path):
    con = duckdb.connect()
    counts = split_last_n(con, ratings, tmp_path / "last_n", n=3)
    test = _rows(con, tmp_path / "last_n" / "test.parquet")
    assert test == [(1, 12), (1, 13), (1, 14), (3, 10), (3, 15), (3, 16)]
    train = _rows(con, tmp_path / "last_n" / "train.parquet")
    assert train == [(1, 10), (1, 11), (2, 10), (2, 12), (2, 15), (3, 11)]  # user 2 (3 ratings) train only
    assert counts["test_users"] == 2 and counts["train_rows"] + counts["test_rows"] == 12
    (leaks,) = con.execute(
        f"""SELECT count(*) FROM read_parquet('{tmp_path}/last_n/train.parquet') a
            JOIN read_parquet('{tmp_path}/last_n/test.parquet') b USING (user_id) WHERE b.timestamp < a.timestamp"""
    ).fetchone()
    assert leaks == 0
    split = load_split(con, tmp_path / "last_n")
    assert split.ids.user_ids.tolist() == [1, 2, 3] and split.ids.item_ids.tolist() == [10, 11, 12, 15]
    assert split.test_users.tolist() == [1, 3]
    # movies 13, 14, 16 are unknown in training: they stay in the test set (honest misses)
    assert sorted(split.test_movie_ids.tolist()) == [10, 12, 13, 14, 15, 16]
    # train in index space round-trips to the raw ids
    u1 = split.ids.user_index(np.array([1]))[0]
    assert split.ids.item_raw(split.train.user_items(u1)).tolist() == [10, 11]


def test_global_time_cut(ratings, tmp_path):
    con = duckdb.connect()
    counts = split_global_time(con, ratings, tmp_path / "gt")
    ts = {p: [r[0] for r in con.execute(f"SELECT epoch(timestamp)::INT FROM read_parquet('{tmp_path}/gt/{p}.parquet')"
                                       ).fetchall()] for p in ("train", "valid", "test")}
    assert sum(len(v) for v in ts.values()) == 12
    assert max(ts["train"]) < min(ts["valid"] + ts["test"])
    assert not ts["valid"] or max(ts["valid"]) < min(ts["test"])
    # sorted times 5 10 15 20 25 30 35 40 40 50 60 70: quantile_disc(0.8) = the 10th (ceil(12 * 0.8)) = 50,
    # quantile_disc(0.9) = the 11th = 60; a cut timestamp belongs to the later part
    assert sorted(ts["train"]) == [5, 10, 15, 20, 25, 30, 35, 40, 40]
    assert ts["valid"] == [50] and sorted(ts["test"]) == [60, 70]
    split = load_split(con, tmp_path / "gt")
    assert split.test_users.tolist() == [3] and counts["test_users"] == 1  # user 3 is known in train


def test_valid_target_for_tuning(ratings, tmp_path):
    """global_time's valid window loads as an evaluation target of its own (train unchanged); last_n has none."""
    from movielens_assets.core.evaluation.splits import has_target, with_target

    con = duckdb.connect()
    split_global_time(con, ratings, tmp_path / "gt")
    split_last_n(con, ratings, tmp_path / "ln", n=3)
    test = load_split(con, tmp_path / "gt")
    valid = load_split(con, tmp_path / "gt", target="valid")
    rows = con.execute(f"SELECT user_id, movie_id FROM read_parquet('{tmp_path}/gt/valid.parquet')").fetchall()
    known = [(u, m) for u, m in rows if test.ids.user_index([u])[0] >= 0]
    assert known
    assert list(zip(valid.test_user_ids.tolist(), valid.test_movie_ids.tolist(), strict=True)) == known
    np.testing.assert_array_equal(valid.train.items, test.train.items)
    again = with_target(con, test, tmp_path / "gt", "valid")
    np.testing.assert_array_equal(again.test_movie_ids, valid.test_movie_ids)
    assert has_target(tmp_path / "gt", "valid") and not has_target(tmp_path / "ln", "valid")
    with pytest.raises(FileNotFoundError, match="valid.parquet.*no 'valid' rows"):
        load_split(con, tmp_path / "ln", target="valid")


def test_splits_do_not_depend_on_the_tie_order_of_the_ratings_file(tmp_path):
    """The ratings table is sorted by (user_id, timestamp) only, so equal timestamps come in any order (DuckDB's sort
    is not stable); the splits break ties by movie_id and must come out identical, row for row."""
    rows = [(1, m, 3.0, 10) for m in (20, 23, 21, 22)] + [(1, 30, 4.0, 5), (2, 10, 4.0, 7), (2, 11, 2.0, 7),
                                                         (2, 12, 5.0, 7), (2, 13, 1.0, 7), (2, 14, 1.0, 9)]
    con = duckdb.connect()
    outputs = []
    for order in ("ASC", "DESC"):
        src = _write_ratings(tmp_path / f"ratings_{order}.parquet", rows, order)
        split_last_n(con, src, tmp_path / order / "last_n", n=3)
        split_global_time(con, src, tmp_path / order / "global_time")
        outputs.append({
            f"{p}/{part}": con.execute(
                f"SELECT * FROM read_parquet('{tmp_path / order / p / part}.parquet')"
            ).fetchall()
            for p, parts in (("last_n", ("train", "test")), ("global_time", ("train", "valid", "test")))
            for part in parts
        })
    asc, desc = outputs
    assert asc == desc
    # the boundary falls inside user 1's tie at t=10: the larger movie ids are the later ones
    assert [m for u, m, *_ in asc["last_n/test"] if u == 1] == [21, 22, 23]


def test_last_n_window_is_the_same_rule_applied_to_train(tmp_path):
    """last_n's window stage: each user's last 3 TRAIN rows (users keeping >= 1 row), so window rows are
    after the user's window-train rows and before their test rows; window train + window = train."""
    rows = [(1, m, 4.0, 10 * m) for m in range(1, 10)]  # 9 ratings: 3 test, 3 window, 3 window-train
    rows += [(2, m, 3.0, 5 * m) for m in range(1, 7)]  # 6 ratings: 3 test, 3 train (too few for a window)
    rows += [(3, 1, 2.0, 7), (3, 2, 5.0, 7), (3, 3, 1.0, 7), (3, 4, 3.0, 7), (3, 5, 4.0, 7), (3, 6, 4.0, 7),
             (3, 7, 4.0, 8)]  # ties at t=7 broken by movie_id
    ratings = _write_ratings(tmp_path / "ratings.parquet", rows)
    con = duckdb.connect()
    counts = split_last_n(con, ratings, tmp_path / "last_n", n=3)
    base = tmp_path / "last_n"
    assert _rows(con, base / "window" / "valid.parquet") == [(1, 4), (1, 5), (1, 6), (3, 2), (3, 3), (3, 4)]
    assert _rows(con, base / "window" / "train.parquet") == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3),
                                                              (3, 1)]
    assert sorted(_rows(con, base / "window" / "valid.parquet") + _rows(con, base / "window" / "train.parquet")
                  ) == _rows(con, base / "train.parquet")
    assert counts["window_users"] == 2 and counts["window_rows"] == 6 and counts["window_train_rows"] == 7
    stages = protocol_stages(tmp_path, "last_n")
    assert [s.name for s in stages] == ["test", "window"] and stages[1].fit_dir == base / "window"
    window = load_stage(con, stages[1])
    assert window.test_users.tolist() == [1, 3] and window.ids.user_ids.tolist() == [1, 2, 3]
    assert window.ids.item_ids.tolist() == [1, 2, 3]  # its own IdMap, from the window stage's train
    users, user_rows, movie_rows, _ = load_targets(con, stages[1])
    assert users.tolist() == [1, 3] and sorted(zip(user_rows.tolist(), movie_rows.tolist(), strict=True)) == [
        (1, 4), (1, 5), (1, 6), (3, 2), (3, 3), (3, 4)]
    g_test, g_window = protocol_stages(tmp_path, "global_time")
    assert g_test.fit_dir == g_window.fit_dir and g_window.target == "valid"
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_stages(tmp_path, "random")
