"""Train / test splits of the ratings table, in DuckDB (no Python loop over ratings).

Two protocols (see docs/EVALUATION.md):

- `last_n` (primary): each user's last `n` interactions by time (ties broken by movie_id, the
  table's own order) are TEST, the rest TRAIN. A user goes to test only if they keep at least
  `min_train` interactions in train (i.e. has >= n + min_train interactions); users with fewer
  stay train-only (they still shape the model, they are not evaluated). Every test interaction of
  a user is at or after every train interaction of that user.
- `global_time`: one global cut by timestamp: the earliest 80% of interactions (by time) are TRAIN,
  the next 10% VALID, the last 10% TEST. The cuts are TIMESTAMPS (quantiles), so nothing in train is
  later than anything in valid / test. Evaluated users: users with test interactions who are known in
  train (the IdMap); items unseen in training stay in the test set (they count as misses: an honest
  denominator).

Each protocol directory holds `train.parquet`, `test.parquet` (+ `valid.parquet` for global_time)
with the ratings schema, and `ids/` — the ONE IdMap of that protocol, built from its train file.

Two stages per protocol (the two-stage setup, docs/RANKING.md): `test` (fit on train, evaluate the test
users) and `window` (fit on train minus a window, evaluate the window users: merge tuning and ranker
training). last_n's window is each user's last `n` TRAIN rows, by the same rule as its test rows, in
`last_n/window/{train,valid}.parquet` + `ids/`; global_time's window is its valid file, fitted on the same
train as its test stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.duck import one_row, sql_str
from movielens_assets.core.recall.base import IdMap, Interactions

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

PROTOCOLS = ("last_n", "global_time")
COLUMNS = "user_id, movie_id, rating, timestamp"
WINDOW = "window"
STAGES = ("test", WINDOW)


@dataclass(frozen=True)
class Stage:
    """Where one stage of a protocol is fitted and evaluated: `fit_dir` holds `train.parquet` + `ids/`, the
    evaluated rows are `fit_dir/<target>.parquet`. Two stages with the same `fit_dir` share one fit."""

    protocol: str
    name: str  # "test" | "window"
    fit_dir: Path
    target: str  # "test" | "valid"

    @property
    def key(self) -> str:
        """`<protocol>` for the test stage, `<protocol>/window` for the window stage."""
        return self.protocol if self.name == "test" else f"{self.protocol}/{self.name}"


def protocol_stages(splits_dir: str | os.PathLike[str], protocol: str) -> tuple[Stage, Stage]:
    """The (test, window) stages of `protocol` under `splits_dir` (see the module docstring)."""
    base = Path(splits_dir) / protocol
    if protocol == "last_n":
        return Stage(protocol, "test", base, "test"), Stage(protocol, WINDOW, base / WINDOW, "valid")
    if protocol == "global_time":
        return Stage(protocol, "test", base, "test"), Stage(protocol, WINDOW, base, "valid")
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    with atomic_path(path) as tmp:
        con.execute(f"COPY ({query}) TO {sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    (n,) = one_row(con.execute(f"SELECT count(*) FROM read_parquet({sql_str(path)})"))
    return int(n)


def _write_ids(con: duckdb.DuckDBPyConnection, train: Path, directory: Path) -> IdMap:
    users = con.execute(f"SELECT DISTINCT user_id FROM read_parquet({sql_str(train)})").fetchnumpy()["user_id"]
    items = con.execute(f"SELECT DISTINCT movie_id FROM read_parquet({sql_str(train)})").fetchnumpy()["movie_id"]
    ids = IdMap.from_train(users, items)
    ids.save(directory / "ids")
    return ids


def _split_last(con: duckdb.DuckDBPyConnection, source: Path, out_dir: Path, target: str, *, n: int, min_train: int
                ) -> dict[str, int]:
    """Each user's last `n` rows of `source` (ties by movie_id) -> `out_dir/<target>.parquet`, the rest ->
    `out_dir/train.parquet`, for users keeping >= `min_train` rows; `out_dir/ids/` from the train file."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _ranked AS
        SELECT {COLUMNS},
               row_number() OVER (PARTITION BY user_id ORDER BY timestamp DESC, movie_id DESC) AS pos_from_end,
               count(*) OVER (PARTITION BY user_id) AS n_user
        FROM read_parquet({sql_str(source)})"""
    )
    is_target = f"(n_user >= {int(n) + int(min_train)} AND pos_from_end <= {int(n)})"
    order = "ORDER BY user_id, timestamp, movie_id"
    train_rows = _copy(con, f"SELECT {COLUMNS} FROM _ranked WHERE NOT {is_target} {order}", out_dir / "train.parquet")
    target_rows = _copy(con, f"SELECT {COLUMNS} FROM _ranked WHERE {is_target} {order}", out_dir / f"{target}.parquet")
    (target_users,) = one_row(con.execute(f"SELECT count(DISTINCT user_id) FROM _ranked WHERE {is_target}"))
    con.execute("DROP TABLE _ranked")
    ids = _write_ids(con, out_dir / "train.parquet", out_dir)
    return {"train_rows": train_rows, f"{target}_rows": target_rows, "train_users": ids.n_users,
            "train_items": ids.n_items, f"{target}_users": int(target_users)}


def split_last_n(
    con: duckdb.DuckDBPyConnection, ratings: Path, out_dir: Path, *, n: int = 3, min_train: int = 1
) -> dict[str, int]:
    """Write `out_dir/{train,test}.parquet` and `out_dir/ids/`, and the window stage: the same rule applied
    to train -> `out_dir/window/{train,valid}.parquet` + `ids/`. Returns row / user counts (`window_*` for the
    window stage)."""
    counts = _split_last(con, ratings, out_dir, "test", n=n, min_train=min_train)
    window = _split_last(con, out_dir / "train.parquet", out_dir / WINDOW, "valid", n=n, min_train=min_train)
    counts.update({f"window_{k.replace('valid_', '')}": v for k, v in window.items()})
    return counts


def split_global_time(
    con: duckdb.DuckDBPyConnection, ratings: Path, out_dir: Path, *, train_frac: float = 0.8, valid_frac: float = 0.1
) -> dict[str, int | str]:
    """Write `out_dir/{train,valid,test}.parquet` and `out_dir/ids/` cut at the global time quantiles."""
    src = f"read_parquet({sql_str(ratings)})"
    t1, t2 = one_row(con.execute(
        f"SELECT quantile_disc(timestamp, {float(train_frac)}), "
        f"quantile_disc(timestamp, {float(train_frac + valid_frac)}) FROM {src}"
    ))
    if t1 is None:
        raise ValueError(f"{ratings} holds no ratings")
    # A cut timestamp belongs to the LATER part, so train < t1 <= valid < t2 <= test, strictly.
    t1s, t2s = f"TIMESTAMP '{t1}'", f"TIMESTAMP '{t2}'"
    order = "ORDER BY user_id, timestamp, movie_id"
    counts: dict[str, int | str] = {"train_cut": str(t1), "test_cut": str(t2)}
    counts["train_rows"] = _copy(con, f"SELECT {COLUMNS} FROM {src} WHERE timestamp < {t1s} {order}",
                                 out_dir / "train.parquet")
    counts["valid_rows"] = _copy(con, f"SELECT {COLUMNS} FROM {src} WHERE timestamp >= {t1s} AND timestamp < {t2s} "
                                 f"{order}", out_dir / "valid.parquet")
    counts["test_rows"] = _copy(con, f"SELECT {COLUMNS} FROM {src} WHERE timestamp >= {t2s} {order}",
                                out_dir / "test.parquet")
    ids = _write_ids(con, out_dir / "train.parquet", out_dir)
    counts.update(train_users=ids.n_users, train_items=ids.n_items)
    test_users = con.execute(f"SELECT DISTINCT user_id FROM read_parquet({sql_str(out_dir / 'test.parquet')})"
                             ).fetchnumpy()["user_id"]
    counts["test_users"] = int((ids.user_index(test_users) >= 0).sum())
    return counts


def write_splits(con: duckdb.DuckDBPyConnection, ratings: Path, splits_dir: Path, *, n: int = 3) -> dict[str, dict]:
    """Both protocols under `splits_dir/<protocol>/`."""
    return {
        "last_n": split_last_n(con, ratings, splits_dir / "last_n", n=n),
        "global_time": split_global_time(con, ratings, splits_dir / "global_time"),
    }


@dataclass(frozen=True)
class Split:
    """One protocol loaded for fitting and evaluation: the IdMap, train in index space, the test rows."""

    protocol: str
    ids: IdMap
    train: Interactions
    test_users: np.ndarray  # raw ids of the evaluated users (known in train, >= 1 test row), sorted
    test_user_ids: np.ndarray  # raw user id per test row
    test_movie_ids: np.ndarray  # raw movie id per test row
    test_ratings: np.ndarray  # float32 per test row

    @property
    def test_user_index(self) -> np.ndarray:
        return self.ids.user_index(self.test_users)

    def item_popularity(self) -> np.ndarray:
        """Train interactions per item index (the popularity used by the metrics)."""
        return np.bincount(self.train.items, minlength=self.ids.n_items)


def load_split(con: duckdb.DuckDBPyConnection, directory: str | os.PathLike[str], target: str = "test") -> Split:
    """The protocol in `directory`: IdMap, train, and the evaluation rows of `target` ("test", or "valid"
    where the protocol has one -- global_time's tuning window) in the `test_*` fields."""
    directory = Path(directory)
    ids = IdMap.load(directory / "ids")
    tr = con.execute(
        f"SELECT user_id, movie_id, rating, epoch(timestamp)::BIGINT AS ts "
        f"FROM read_parquet({sql_str(directory / 'train.parquet')})"
    ).fetchnumpy()
    train = Interactions.from_arrays(
        ids.user_index(tr["user_id"]), ids.item_index(tr["movie_id"]), tr["rating"], tr["ts"], ids.n_users, ids.n_items
    )
    return Split(directory.name, ids, train, *_targets(con, directory, ids, target))


def with_target(con: duckdb.DuckDBPyConnection, split: Split, directory: str | os.PathLike[str], target: str) -> Split:
    """`split` (same IdMap and train) evaluated on another target file of its protocol, e.g. "valid"."""
    import dataclasses

    users, user_ids, movie_ids, ratings = _targets(con, Path(directory), split.ids, target)
    return dataclasses.replace(split, test_users=users, test_user_ids=user_ids, test_movie_ids=movie_ids,
                               test_ratings=ratings)


def load_stage(con: duckdb.DuckDBPyConnection, stage: Stage) -> Split:
    """The split a stage is fitted on (its train, IdMap) evaluated on its target rows."""
    return load_split(con, stage.fit_dir, stage.target)


def load_targets(con: duckdb.DuckDBPyConnection, stage: Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Only the evaluated rows of a stage (without loading its train): (users, user per row, movie per row,
    rating per row), raw ids, users known in the stage's train — the `test_*` fields of `load_stage`."""
    return _targets(con, stage.fit_dir, IdMap.load(stage.fit_dir / "ids"), stage.target)


def has_target(directory: str | os.PathLike[str], target: str) -> bool:
    return (Path(directory) / f"{target}.parquet").is_file()


def _targets(con: duckdb.DuckDBPyConnection, directory: Path, ids: IdMap, target: str):
    path = directory / f"{target}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: protocol {directory.name!r} has no {target!r} rows")
    te = con.execute(
        f"SELECT user_id, movie_id, rating FROM read_parquet({sql_str(path)}) ORDER BY user_id, timestamp, movie_id"
    ).fetchnumpy()
    known = ids.user_index(te["user_id"]) >= 0
    tu, tm, trt = (np.asarray(te[c])[known] for c in ("user_id", "movie_id", "rating"))
    return np.unique(tu.astype(np.int64)), tu.astype(np.int64), tm.astype(np.int64), trt.astype(np.float32)
