"""The recall runner without Dagster: channel runs over both protocols and stages (shared fits, candidates,
models, training curves), the merge with weights tuned on the window, the evaluation report, bad input."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.evaluation.splits import PROTOCOLS, write_splits
from movielens_assets.core.recall.itemcf import ItemCFRecall
from movielens_assets.core.recall.popularity import PopularityRecall
from movielens_assets.core.recall.runner import (
    ChannelRunStats,
    MergeParams,
    RecallPaths,
    evaluate_channels,
    merge_channels,
    run_channels,
    takes_split,
    training_curve,
)
from movielens_assets_tests.core.ranking.tiny_protocol import ratings_rows, write_ratings

STAGE_KEYS = ("last_n", "last_n/window", "global_time", "global_time/window")


class CurvePopularity(PopularityRecall):
    """Popularity with a training log, as a trained channel (two_tower) has."""

    def fit(self, train):
        super().fit(train)
        self.training_log_ = {"loss_per_epoch": [0.91234567, 0.51234567], "train_seconds": 0.5, "device": "cpu"}
        return self


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    ratings = write_ratings(root / "ratings.parquet", ratings_rows(seed=3, n_users=60, n_movies=40))
    paths = RecallPaths(root / "recall", root / "models")
    lines: list[str] = []
    calls: list = []

    def with_split(split):
        calls.append(split)
        return CurvePopularity()

    with duckdb.connect() as con:
        write_splits(con, ratings, paths.splits_dir)
        stats = run_channels(paths, {"popularity": PopularityRecall, "itemcf": lambda: ItemCFRecall(n_neighbors=10),
                                     "curvy": with_split}, con, progress=lines.append)
    return paths, stats, lines, calls


@pytest.fixture(scope="module")
def merged(run):
    paths = run[0]
    warnings: list[str] = []
    with duckdb.connect() as con:
        out = merge_channels(paths, con, MergeParams(tune_users=25), warn=warnings.append)
    return paths, out, warnings


def test_takes_split():
    def two(split, k=1):
        return PopularityRecall()

    def keyword_only(*, split=None):
        return PopularityRecall()

    assert not takes_split(PopularityRecall)  # every parameter has a default
    assert not takes_split(lambda: PopularityRecall())
    assert takes_split(lambda split: PopularityRecall())
    assert takes_split(two)
    assert not takes_split(keyword_only)


def test_training_curve():
    assert training_curve(PopularityRecall()) is None
    model = CurvePopularity()
    model.training_log_ = {"loss_per_epoch": [1.23456789], "device": "cpu"}
    assert training_curve(model) == {"loss_per_epoch": [1.234568], "final_loss": 1.234568, "device": "cpu"}


def test_channels_run_on_every_stage_with_shared_fits(run):
    paths, stats, lines, calls = run
    assert isinstance(stats, ChannelRunStats)
    assert set(stats.stats) == {f"{k}/{c}" for k in STAGE_KEYS for c in ("popularity", "itemcf", "curvy")}
    # global_time's window stage reads the test stage's training file: one fit for both
    for channel in ("popularity", "itemcf", "curvy"):
        assert stats.stats[f"global_time/window/{channel}"]["shared_fit"] is True
        assert stats.stats[f"global_time/window/{channel}"]["fit_s"] == 0.0
        assert "shared_fit" not in stats.stats[f"last_n/window/{channel}"]
        assert (paths.model("last_n", channel, "window")).is_dir() and paths.model("global_time", channel).is_dir()
    assert not (paths.models_dir / "recall" / "global_time" / "window").exists()
    assert len(calls) == 3  # a factory taking the split is called once per fit, with that fit's split
    rows = 0
    with duckdb.connect() as con:
        for key in STAGE_KEYS:
            protocol, _, stage = key.partition("/")
            for channel in ("popularity", "itemcf", "curvy"):
                table = pq.read_table(paths.candidates(protocol, channel, stage or "test"))
                entry = stats.stats[f"{key}/{channel}"]
                assert table.num_rows == entry["rows"] > 0
                assert table.column_names == ["user_id", "movie_id", "rank", "score"]
                assert table.column("rank").to_numpy().min() == 1
                users = np.unique(table.column("user_id").to_numpy()).size
                assert users == entry["users"] if channel != "itemcf" else 0 < users <= entry["users"]
                rows += table.num_rows
        # last_n's window users are exactly its valid file's users known in the window train
        window = paths.stages("last_n")[1]
        (valid_users,) = con.execute(f"SELECT count(DISTINCT user_id) FROM read_parquet("
                                     f"'{window.fit_dir / 'valid.parquet'}')").fetchone()
        assert stats.stats["last_n/window/popularity"]["users"] == valid_users
    assert stats.rows == rows
    # training curves: one per fit of the channel with a log; progress lines for every stage
    assert set(stats.curves) == {"last_n/curvy", "last_n/window/curvy", "global_time/curvy"}
    assert stats.curves["last_n/curvy"]["final_loss"] == 0.512346
    assert sum("loss per epoch" in line for line in lines) == 3
    assert sum("candidates for" in line for line in lines) == len(stats.stats)


def test_merge_tunes_on_the_window_and_merges_both_stages(merged):
    paths, merged, warnings = merged
    assert set(merged.stats) == {f"{p}/{name}" for p in PROTOCOLS for name in ("merged", "merged_quota")} | {
        f"{p}/window/merged" for p in PROTOCOLS}
    for protocol in PROTOCOLS:
        tuning = json.loads(paths.merge_weights(protocol).read_text())
        assert tuning["tuned_on"] == f"{protocol}/window" and 0 < tuning["users"] <= 25
        assert set(tuning["weights"]) == {"popularity", "itemcf"}  # "curvy" is not a merged channel
        assert merged.weights[protocol] == {k: v for k, v in tuning.items() if k != "trace"}
        for stage in ("test", "window"):
            assert merged.missing[f"{protocol}/{stage}"] == ["semantic", "two_tower"]
            table = pq.read_table(paths.candidates(protocol, "merged", stage))
            assert table.num_rows == merged.stats[protocol + ("" if stage == "test" else "/window") + "/merged"][
                "rows"]
            assert {"rank_popularity", "rank_itemcf", "score_itemcf"} <= set(table.column_names)
        assert merged.stats[f"{protocol}/merged"]["channels"] == ["popularity", "itemcf"]
    assert len(warnings) == 4 and all("no candidates yet for ['semantic', 'two_tower']" in w for w in warnings)


def test_merge_with_equal_weights(run, tmp_path):
    shutil.copytree(run[0].recall_dir, tmp_path / "recall")  # the other tests keep the tuned merge
    paths = RecallPaths(tmp_path / "recall", run[0].models_dir)
    with duckdb.connect() as con:
        out = merge_channels(paths, con, MergeParams(tune_weights=False), channels=("popularity", "itemcf"))
    assert out.missing == {}
    for protocol in PROTOCOLS:
        assert out.weights[protocol] == {"weights": None, "note": "tune_weights=False: equal weights"}
        assert json.loads(paths.merge_weights(protocol).read_text()) == out.weights[protocol]


def test_evaluation_report(merged):
    paths = merged[0]
    with duckdb.connect() as con:
        report = evaluate_channels(paths, con, dataset="tiny", n_boot=20, seed=1)
    assert report["dataset"] == "tiny" and report["candidates_per_channel"] == 200
    assert set(report["protocols"]) == set(PROTOCOLS)
    for protocol, body in report["protocols"].items():
        # known channels only: "curvy" has candidate files but is no channel of the pipeline
        assert list(body["channels"]) == ["popularity", "itemcf", "merged", "merged_quota"]
        assert body["users"] == body["channels"]["popularity"]["users"] > 0
        assert 0.0 <= body["channels"]["merged"]["recall@20"] <= 1.0
        assert body["merge"]["method"] == "rrf" and "trace" not in body["merge"]
        assert body["merge"]["tuned_on"] == f"{protocol}/window"


@pytest.mark.parametrize("channels", [{}, {"merged": PopularityRecall}, {"merged_quota": PopularityRecall},
                                      {"Bad-Name": PopularityRecall}])
def test_bad_channel_names_are_refused_before_any_work(tmp_path, channels):
    paths = RecallPaths(tmp_path / "recall", tmp_path / "models")
    with duckdb.connect() as con, pytest.raises(ValueError, match="channel"):
        run_channels(paths, channels, con)
    assert not (tmp_path / "recall").exists() and not (tmp_path / "models").exists()
