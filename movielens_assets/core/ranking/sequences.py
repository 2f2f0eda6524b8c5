"""The behaviour-sequence store: every user's time-ordered history, once, as memory-mapped CSR arrays.

A ranking sample never carries its user's history (at ML-32M, 320M samples x 50 items would be ~64 GB):
it stores `(user_id, seq_pos)` — the number of the user's source rows strictly before its cut-off — and
readers gather the window they need (`history`). The source of a protocol is its window stage's train
plus its window rows (docs/RANKING.md): last_n's whole train, global_time's train + valid; never a test row.

Files (`ranking/sequences/<protocol>/`, one directory written atomically): `user_ids.npy` (int64, sorted),
`indptr.npy` (int64, n_users + 1), per row `movie_id.npy` (int32), `rating.npy` (float32), `ts.npy`
(int64 seconds), `in_window.npy` (int8: the row is one of the user's window rows), per user
`window_start.npy` / `test_start.npy` (int64 seconds; `NO_TIME` when the user has none), `meta.json`.
Rows are sorted by (user, time, movie): ties broken as the splits break them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from movielens_assets.core.data.duck import sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

NO_TIME = np.iinfo(np.int64).max
"""`window_start` / `test_start` of a user without window / test rows."""
_ROW_ARRAYS = {"movie_id": np.int32, "rating": np.float32, "ts": np.int64, "in_window": np.int8}
_USER_ARRAYS = {"user_ids": np.int64, "indptr": np.int64, "window_start": np.int64, "test_start": np.int64}


@dataclass(frozen=True)
class SequenceStore:
    user_ids: np.ndarray
    indptr: np.ndarray
    movie_id: np.ndarray
    rating: np.ndarray
    ts: np.ndarray
    in_window: np.ndarray
    window_start: np.ndarray
    test_start: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_rows(self) -> int:
        return int(self.movie_id.size)

    def user_index(self, raw_user_ids: np.ndarray) -> np.ndarray:
        """Positions of raw user ids in the store (-1 for users without source rows)."""
        raw = np.asarray(raw_user_ids, dtype=np.int64)
        pos = np.searchsorted(self.user_ids, raw)
        pos_c = np.minimum(pos, max(self.n_users - 1, 0))
        ok = (pos < self.n_users) & (self.user_ids[pos_c] == raw) if self.n_users else np.zeros(raw.shape, bool)
        return np.where(ok, pos_c, -1).astype(np.int64)

    def history(self, users: np.ndarray, seq_pos: np.ndarray, length: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The last `length` rows before each sample: (movie_id int32, rating float32, ts int64, mask bool),
        each [n, length], oldest first and RIGHT-aligned (the most recent entry in the last column); padding
        is movie 0 / rating 0 / ts 0 with mask False."""
        users = np.asarray(users, dtype=np.int64)
        seq_pos = np.asarray(seq_pos, dtype=np.int64)
        end = self.indptr[users] + seq_pos  # one past the last row before the cut-off
        idx = end[:, None] - length + np.arange(length)[None, :]
        mask = idx >= self.indptr[users][:, None]
        safe = np.where(mask, idx, 0)
        return (np.where(mask, self.movie_id[safe], 0).astype(np.int32),
                np.where(mask, self.rating[safe], 0.0).astype(np.float32),
                np.where(mask, self.ts[safe], 0).astype(np.int64), mask)

    # ---- persistence
    def save(self, directory: str | os.PathLike[str], meta: dict | None = None) -> None:
        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            for name in (*_USER_ARRAYS, *_ROW_ARRAYS):
                np.save(tmp / f"{name}.npy", getattr(self, name))
            (tmp / "meta.json").write_text(json.dumps({"users": self.n_users, "rows": self.n_rows, **(meta or {})}))

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> SequenceStore:
        directory = Path(directory)
        if not (directory / "meta.json").is_file():
            raise FileNotFoundError(f"{directory}: no sequence store here (materialize `user_sequences` first)")
        mode: Literal["r"] | None = "r" if mmap else None
        store = cls(**{name: np.load(directory / f"{name}.npy", mmap_mode=mode) for name in (*_USER_ARRAYS,
                                                                                           *_ROW_ARRAYS)})
        if mmap:
            object.__setattr__(store, "_mapped_from", str(directory))
        return store

    def __reduce__(self):
        """A memory-mapped store pickles as its directory (a worker process maps the same files instead of
        receiving a copy of every array); an in-memory one as its arrays."""
        source = getattr(self, "_mapped_from", None)
        if source is not None:
            return (SequenceStore.load, (source,))
        return (SequenceStore, tuple(getattr(self, f) for f in self.__dataclass_fields__))


def _check_order(indptr: np.ndarray, ts: np.ndarray, movie_id: np.ndarray) -> None:
    """Every user's rows by (time, movie), strictly: the store is only correct in that order, so it is verified
    (O(rows)) rather than trusted to the engine's ORDER BY."""
    if ts.size < 2:
        return
    same_user = np.ones(ts.size - 1, dtype=bool)
    same_user[indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < ts.size)] - 1] = False
    later = (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (movie_id[1:] > movie_id[:-1]))
    bad = np.flatnonzero(same_user & ~later)
    if bad.size:
        raise RuntimeError(f"sequence store: rows {bad[0]} and {bad[0] + 1} are out of (user, time, movie) order")


def build_sequence_store(con: duckdb.DuckDBPyConnection, fit: Path, window: Path, test: Path) -> SequenceStore:
    """The store of one protocol from its window stage's train file (`fit`), window rows (`window`) and test
    rows (`test`, only for each user's test start). Sorted and gathered by DuckDB; the arrays are filled a
    record batch at a time."""
    rows_sql = (f"SELECT user_id, movie_id, rating, epoch(timestamp)::BIGINT AS ts, 0::TINYINT AS in_window "
                f"FROM read_parquet({sql_str(fit)}) UNION ALL "
                f"SELECT user_id, movie_id, rating, epoch(timestamp)::BIGINT AS ts, 1::TINYINT AS in_window "
                f"FROM read_parquet({sql_str(window)})")
    users = con.execute(
        f"""SELECT user_id::BIGINT AS user_id, count(*) AS n,
                   coalesce(min(ts) FILTER (WHERE in_window = 1), {NO_TIME}) AS window_start
            FROM ({rows_sql}) GROUP BY user_id ORDER BY user_id""").fetchnumpy()
    tests = con.execute(f"""SELECT user_id::BIGINT AS user_id, min(epoch(timestamp))::BIGINT AS t
                            FROM read_parquet({sql_str(test)}) GROUP BY 1 ORDER BY 1""").fetchnumpy()
    user_ids = np.asarray(users["user_id"], dtype=np.int64)
    indptr = np.zeros(user_ids.size + 1, dtype=np.int64)
    np.cumsum(np.asarray(users["n"], dtype=np.int64), out=indptr[1:])
    test_start = np.full(user_ids.size, NO_TIME, dtype=np.int64)
    pos = np.searchsorted(user_ids, tests["user_id"])
    ok = pos < user_ids.size
    ok[ok] = user_ids[pos[ok]] == np.asarray(tests["user_id"])[ok]
    test_start[pos[ok]] = np.asarray(tests["t"], dtype=np.int64)[ok]
    n = int(indptr[-1])
    arrays = {name: np.empty(n, dtype=dtype) for name, dtype in _ROW_ARRAYS.items()}
    reader = con.sql(f"SELECT movie_id, rating, ts, in_window FROM ({rows_sql}) "
                     "ORDER BY user_id, ts, movie_id").to_arrow_reader(1_000_000)
    done = 0
    for batch in reader:
        k = batch.num_rows
        for name, dtype in _ROW_ARRAYS.items():
            arrays[name][done : done + k] = batch.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        done += k
    if done != n:  # pragma: no cover - the two queries read the same files
        raise RuntimeError(f"sequence store: {done} rows read, {n} expected")
    _check_order(indptr, arrays["ts"], arrays["movie_id"])
    return SequenceStore(user_ids, indptr, arrays["movie_id"], arrays["rating"], arrays["ts"], arrays["in_window"],
                         np.asarray(users["window_start"], dtype=np.int64), test_start)
