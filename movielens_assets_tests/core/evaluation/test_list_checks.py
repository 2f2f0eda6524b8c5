"""List-file checks: a well-formed list passes; each broken invariant is reported, alone, with a phrase that
names it (what the asset checks of the recall and ranking groups show)."""

from __future__ import annotations

import math

import duckdb
import pytest

from movielens_assets.core.evaluation.list_checks import (
    CANDIDATES,
    RECOMMENDATIONS,
    check_list_file,
    merged_spec,
    summarise,
)

TRAIN = [(1, 10), (1, 11), (2, 10), (2, 12), (3, 13)]
TARGET_USERS = [1, 2]
# user 1: items 12, 13, 14; user 2: items 11, 13 — none seen in train, scores best first
GOOD = [(1, 12, 1, 0.9), (1, 13, 2, 0.5), (1, 14, 3, 0.1), (2, 11, 1, 0.8), (2, 13, 2, 0.7)]


def _sql(v):
    if v is None:
        return "NULL"
    if isinstance(v, float) and not math.isfinite(v):
        return f"'{v}'::DOUBLE"
    return repr(v)


def _write(con, path, rows, columns="user_id INTEGER, movie_id INTEGER, rank INTEGER, score FLOAT"):
    names = [c.split()[0] for c in columns.split(", ")]
    types = [c.split()[1] for c in columns.split(", ")]
    select = ", ".join(f"col{i}::{t} AS {n}" for i, (n, t) in enumerate(zip(names, types, strict=True)))
    values = ", ".join("(" + ", ".join(_sql(v) for v in row) + ")" for row in rows)
    con.execute(f"COPY (SELECT {select} FROM (VALUES {values}) v({', '.join(f'col{i}' for i in range(len(names)))})) "
                f"TO '{path}' (FORMAT parquet)")
    return path


@pytest.fixture
def stage(tmp_path):
    con = duckdb.connect()
    pairs = "user_id INTEGER, movie_id INTEGER"
    train = _write(con, tmp_path / "train.parquet", TRAIN, pairs)
    target = _write(con, tmp_path / "test.parquet", [(u, 99) for u in TARGET_USERS], pairs)
    return con, tmp_path, train, target


def _check(stage, rows, spec=CANDIDATES, columns="user_id INTEGER, movie_id INTEGER, rank INTEGER, score FLOAT"):
    con, tmp, train, target = stage
    path = _write(con, tmp / "list.parquet", rows, columns)
    return check_list_file(con, path, spec, train=train, users=target, label="itemcf last_n/window")


def test_a_good_list_passes_and_records_every_condition(stage):
    report = _check(stage, GOOD)
    assert report.passed and report.rows == 5 and report.users == 2, report.problems
    assert {"missing_columns", "wrong_types", "empty", "duplicates", "non_finite:score", "seen", "unknown_users",
            "ranks_not_1_to_n", "ordered_by:score"} <= set(report.checked)
    assert set(report.checked.values()) == {0}
    assert summarise([report]) == "all 1 files pass"


@pytest.mark.parametrize("rows, condition, phrase", [
    (GOOD + [(1, 10, 4, 0.05)], "seen", "1 candidates already in the user's train split"),
    ([(1, 12, 1, float("nan"))] + GOOD[1:], "non_finite:score", "1 non-finite or NULL score values"),
    ([(1, 12, 1, float("inf"))] + GOOD[1:], "non_finite:score", "non-finite"),
    ([(1, 12, 1, None)] + GOOD[1:], "non_finite:score", "non-finite or NULL"),
    ([(1, 12, 1, 0.9), (1, 13, 3, 0.5), (1, 14, 4, 0.1)] + GOOD[3:], "ranks_not_1_to_n",
     "1 users whose ranks are not 1..n"),
    ([(1, 12, 1, 0.9), (1, 13, 2, 0.5), (1, 14, 2, 0.1)] + GOOD[3:], "ranks_not_1_to_n", "ranks are not 1..n"),
    (GOOD + [(1, 14, 4, 0.05)], "duplicates", "1 duplicate (user, movie) rows"),
    ([(1, 12, 1, 0.1), (1, 13, 2, 0.5)] + GOOD[2:], "ordered_by:score", "score is above that of the row ranked"),
    (GOOD + [(7, 12, 1, 0.3)], "unknown_users", "1 users who are not target users of the stage (test.parquet)"),
])
def test_each_broken_condition_is_reported(stage, rows, condition, phrase):
    report = _check(stage, rows)
    assert not report.passed and report.checked[condition] > 0
    assert [p for p in report.problems if phrase in p], report.problems
    assert report.summary().startswith("itemcf last_n/window: ")
    if condition in ("seen", "unknown_users", "ranks_not_1_to_n", "ordered_by:score"):
        assert report.examples[condition]


def test_the_seen_item_is_the_only_failure_and_its_example_names_it(stage):
    report = _check(stage, GOOD + [(2, 12, 3, 0.1)])
    assert report.problems == ["1 candidates already in the user's train split"]
    assert report.examples["seen"] == [{"user_id": 2, "movie_id": 12}]
    assert summarise([report]) == "itemcf last_n/window: 1 candidates already in the user's train split"


def test_missing_and_mistyped_columns_empty_and_absent_files(stage):
    con, tmp, train, target = stage
    no_score = _check(stage, [r[:3] for r in GOOD], columns="user_id INTEGER, movie_id INTEGER, rank INTEGER")
    assert no_score.problems == ["missing column(s) score"]
    double = _check(stage, GOOD, columns="user_id INTEGER, movie_id INTEGER, rank INTEGER, score DOUBLE")
    assert double.problems == ["column score is DOUBLE (expected FLOAT)"]
    empty = _write(con, tmp / "empty.parquet", GOOD, "user_id INTEGER, movie_id INTEGER, rank INTEGER, score FLOAT")
    con.execute(f"COPY (SELECT * FROM '{empty}' WHERE false) TO '{tmp / 'empty2.parquet'}' (FORMAT parquet)")
    assert check_list_file(con, tmp / "empty2.parquet", CANDIDATES, train=train).problems == ["no rows"]
    absent = check_list_file(con, tmp / "nope.parquet", CANDIDATES, train=train, label="semantic last_n")
    assert not absent.passed and absent.problems[0].startswith("file missing")


def test_merged_lists_pair_each_channels_rank_and_score(stage):
    columns = ("user_id INTEGER, movie_id INTEGER, rank INTEGER, score FLOAT, rank_itemcf INTEGER, "
               "score_itemcf FLOAT")
    good = [(*r, r[2], r[3]) for r in GOOD[:2]] + [(*r, None, None) for r in GOOD[2:]]
    spec = merged_spec(["itemcf"])
    spec = type(spec)(columns={k: v for k, v in spec.columns.items() if not k.startswith("channel")},
                      paired=spec.paired, ordered_by=spec.ordered_by)
    assert _check(stage, good, spec, columns).passed
    unpaired = [*good[:-1], (*GOOD[-1], 2, None)]
    report = _check(stage, unpaired, spec, columns)
    assert report.problems == ["1 rows with only one of rank_itemcf / score_itemcf set"]
    nan = [(*GOOD[0], 1, float("nan")), *good[1:]]
    assert "1 non-finite score_itemcf values" in _check(stage, nan, spec, columns).problems
    missing = _check(stage, GOOD, merged_spec(["itemcf"]))
    assert "missing column(s) channels, channel_ranks, rank_itemcf, score_itemcf" in missing.problems


def test_recommendation_probabilities_are_finite_and_within_0_1(stage):
    columns = ("user_id INTEGER, movie_id INTEGER, rank INTEGER, merged_rank INTEGER, channels VARCHAR[], "
               "p_watch FLOAT, p_like FLOAT")
    good = [(u, m, r, r + 1, ["itemcf"], s, s / 2) for u, m, r, s in GOOD]
    assert _check(stage, good, RECOMMENDATIONS, columns).passed
    above = [(*good[0][:5], 1.5, 0.2), *good[1:]]
    assert "1 p_watch values outside [0, 1]" in _check(stage, above, RECOMMENDATIONS, columns).problems
    nan_like = [(*good[0][:6], float("nan")), *good[1:]]
    assert _check(stage, nan_like, RECOMMENDATIONS, columns).problems == ["1 non-finite or NULL p_like values"]


def test_the_summary_names_the_first_failing_files_then_counts_the_rest(stage):
    bad = _check(stage, GOOD + [(1, 10, 4, 0.05)])
    good = _check(stage, GOOD)
    text = summarise([good, bad, bad, bad, bad], limit=2)
    assert text.count("itemcf last_n/window: 1 candidates") == 2 and text.endswith("and 2 more file(s)")
