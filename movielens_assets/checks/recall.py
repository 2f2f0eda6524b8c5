"""Blocking checks of the recall group, read from the files.

- `splits`: `no_time_leakage` — no test interaction precedes a train interaction.
- every channel asset and `recall_candidates`: `valid_candidate_lists` — every candidate file the asset
  writes (each protocol, each stage: `candidates/<protocol>/[window/]<name>.parquet`) is non-empty, has the
  expected columns and types, holds no (user, movie) of the user's train split of that stage, only the stage's
  target users, finite scores in best-first order and ranks 1..n per user (`core.evaluation.list_checks`).
  Blocking: a seen item or a broken list poisons the merge, the ranking samples and the metrics downstream.
"""


from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import dagster as dg

from movielens_assets.assets import recall as recall_assets
from movielens_assets.checks._lists import list_check_result
from movielens_assets.core.data.duck import one_row, sql_str
from movielens_assets.core.evaluation.list_checks import CANDIDATES, ListSpec, check_list_file, merged_spec
from movielens_assets.core.evaluation.splits import PROTOCOLS, Stage
from movielens_assets.core.recall.runner import MERGED, RECALL_CHANNELS, merged_list_names
from movielens_assets.resources import DataLake


def _users_with_earlier_rows(con, earlier: Path, later: Path) -> int:
    """Users with a row in `later` older than one of their rows in `earlier`."""
    (n,) = one_row(con.execute(
        f"""SELECT count(*)
            FROM (SELECT user_id, max(timestamp) AS t FROM read_parquet({sql_str(earlier)}) GROUP BY 1) a
            JOIN (SELECT user_id, min(timestamp) AS t FROM read_parquet({sql_str(later)}) GROUP BY 1) b USING (user_id)
            WHERE b.t < a.t"""
    ))
    return int(n)


@dg.asset_check(asset=recall_assets.splits, blocking=True,
                description="last_n: each user's test interactions are at or after all of their train "
                            "interactions, and their window rows between their window-train rows and their test "
                            "rows; global_time: every train < every valid <= … < every test timestamp.")
def no_time_leakage(lake: DataLake) -> dg.AssetCheckResult:
    root = recall_assets.splits_dir(lake)
    with lake.duckdb() as con:
        last_n, window = root / "last_n", root / "last_n" / "window"
        bad_users = _users_with_earlier_rows(con, last_n / "train.parquet", last_n / "test.parquet")
        bad_window = (_users_with_earlier_rows(con, window / "train.parquet", window / "valid.parquet")
                      + _users_with_earlier_rows(con, window / "valid.parquet", last_n / "test.parquet"))
        g = {p: sql_str(root / "global_time" / f"{p}.parquet") for p in ("train", "valid", "test")}
        (train_max,), (valid_min, valid_max), (test_min,) = (
            one_row(con.execute(f"SELECT max(timestamp) FROM read_parquet({g['train']})")),
            one_row(con.execute(f"SELECT min(timestamp), max(timestamp) FROM read_parquet({g['valid']})")),
            one_row(con.execute(f"SELECT min(timestamp) FROM read_parquet({g['test']})")),
        )
    later = [t for t in (valid_min, test_min) if t is not None]
    global_ok = (train_max is None or not later or train_max < min(later)) and (
        valid_max is None or test_min is None or valid_max < test_min)
    return dg.AssetCheckResult(
        passed=bool(bad_users == 0 and bad_window == 0 and global_ok),
        metadata={"last_n_users_with_leak": int(bad_users), "last_n_window_users_with_leak": int(bad_window),
                  "global_train_max": str(train_max),
                  "global_valid_min": str(valid_min), "global_test_min": str(test_min)},
    )


ListFile = tuple[str, Path, Stage, ListSpec]
"""(label `<name> <stage key>`, path, the stage it was made for, what it must look like)."""


def _channel_files(*channels: str) -> Callable[[DataLake], Iterator[ListFile]]:
    def files(lake: DataLake) -> Iterator[ListFile]:
        for protocol in PROTOCOLS:
            for stage in recall_assets.stages(lake, protocol):
                for channel in channels:
                    yield (f"{channel} {stage.key}", recall_assets.candidates_path(lake, protocol, channel, stage.name),
                           stage, CANDIDATES)
    return files


def _merged_files(lake: DataLake) -> Iterator[ListFile]:
    for protocol in PROTOCOLS:
        for stage in recall_assets.stages(lake, protocol):
            # the merge took every channel with a file for this stage: each has its rank_ / score_ columns
            path = partial(recall_assets.candidates_path, lake, protocol, stage=stage.name)
            merged = [c for c in RECALL_CHANNELS if path(c).exists()]
            for name in merged_list_names(stage.name):
                yield f"{name} {stage.key}", path(name), stage, merged_spec(merged)


def _candidates_check(asset: dg.AssetsDefinition, files: Callable[[DataLake], Iterator[ListFile]], what: str
                      ) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset, name="valid_candidate_lists", blocking=True,
        description=f"Every candidate file ({what}) of each protocol and stage "
                    "(`<data>/recall/candidates/<protocol>/[window/]<name>.parquet`): non-empty; user_id, movie_id, "
                    "rank INTEGER and score FLOAT (merged lists: + channels, channel_ranks, rank_/score_<channel>); "
                    "no (user, movie) in the user's train split of that stage; only the stage's target users; no "
                    "duplicate; finite scores, best first; ranks 1..n per user.")
    def _check(lake: DataLake) -> dg.AssetCheckResult:
        with lake.duckdb() as con:
            return list_check_result([
                check_list_file(con, path, spec, train=stage.fit_dir / "train.parquet",
                                users=stage.fit_dir / f"{stage.target}.parquet", label=label)
                for label, path, stage, spec in files(lake)])

    return _check


a = recall_assets
recall_checks = [
    no_time_leakage,
    _candidates_check(a.popularity_recall, _channel_files("popularity", "popularity_recent"),
                      "`popularity`, `popularity_recent`"),
    _candidates_check(a.itemcf_recall, _channel_files("itemcf"), "`itemcf`"),
    _candidates_check(a.two_tower_recall, _channel_files("two_tower"), "`two_tower`"),
    _candidates_check(a.semantic_recall, _channel_files("semantic"), "`semantic`"),
    _candidates_check(a.recall_candidates, _merged_files, f"`{MERGED}`; `{MERGED}_quota` for the test users"),
]
