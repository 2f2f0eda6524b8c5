"""Blocking checks on the evaluation splits: no test interaction precedes a train interaction."""


from pathlib import Path

import dagster as dg

from movielens_assets.assets import recall as recall_assets
from movielens_assets.core.data.duck import one_row, sql_str
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


recall_checks = [no_time_leakage]
