"""Data-quality rules over Parquet tables, shared by ingestion (fail fast) and asset checks.

Each rule returns a `Violation` summary: how many rows break it and a few examples, so that callers can
name the table, the field and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from movielens_assets.core.data.duck import one_row, sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

RATING_DOMAIN_TEXT = "{0.5, 1.0, 1.5, ..., 5.0} (half stars)"
RATING_RULE = f"rating in {RATING_DOMAIN_TEXT}"
BAD_RATING_SQL = "rating IS NOT NULL AND (rating < 0.5 OR rating > 5.0 OR rating * 2 <> round(rating * 2))"


def positive_rule(columns: list[str] | tuple[str, ...]) -> str:
    """Ids are positive integers, as in every MovieLens release."""
    return f"({', '.join(columns)}) > 0 (positive integers)"


def bad_id_sql(columns: list[str] | tuple[str, ...]) -> str:
    """SQL true on a row whose id in `columns` is zero or negative (NULL is the NOT NULL rule's)."""
    return " OR ".join(f"{c} <= 0" for c in columns)


@dataclass(frozen=True)
class Violation:
    rule: str
    count: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count == 0


def unique_rule(keys: list[str] | tuple[str, ...]) -> str:
    return f"unique ({', '.join(keys)})"


def not_null_rule(columns: list[str] | tuple[str, ...]) -> str:
    return f"no NULL in ({', '.join(columns)})"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _src(path: str | os.PathLike[str]) -> str:
    return f"read_parquet({sql_str(path)})"


def duplicate_keys(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], keys: list[str], examples: int = 5
) -> Violation:
    """Rows whose key appears more than once: count = number of duplicated keys."""
    cols = ", ".join(keys)
    n = one_row(con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {_src(path)} GROUP BY ALL HAVING count(*) > 1)"
    ))[0]
    ex = (
        _rows(
            con,
            f"SELECT {cols}, count(*) AS occurrences FROM {_src(path)} GROUP BY ALL "
            f"HAVING count(*) > 1 ORDER BY {cols} LIMIT {examples}",
        )
        if n
        else []
    )
    return Violation(unique_rule(keys), int(n), ex)


def _prefetched_int_columns(path: str | os.PathLike[str], columns: list[str], batch_rows: int):
    """Yield the columns of each Parquet batch as integer NumPy arrays (their stored width), reading the next batch in a
    background thread while the caller works on the current one (Arrow and NumPy release the GIL)."""
    import queue
    import threading

    import pyarrow.parquet as pq

    done = object()
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
                if stop.is_set():
                    return
                q.put([batch.column(i).to_numpy(zero_copy_only=False) for i in range(len(columns))])
        except BaseException as exc:  # surfaced in the consumer
            q.put(exc)
        finally:
            q.put(done)

    reader = threading.Thread(target=read, name="parquet-prefetch", daemon=True)
    reader.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                reader.join(0.01)


def duplicate_pairs(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike[str],
    group: str,
    other: str,
    examples: int = 5,
    batch_rows: int = 1 << 18,
) -> Violation:
    """Duplicated (group, other) integer pairs, e.g. (user_id, movie_id) in ratings.

    Fast path for files sorted by `group` (ratings are written sorted by user): stream both columns in
    cache-sized batches (read ahead in a second thread) and sort each batch's packed keys — a batch never
    splits a group, so duplicates can only be adjacent within a batch. Memory stays at a few batches
    whatever the file size; at 32M ratings much faster than a hash aggregate over the whole file
    (docs/BENCHMARKS.md, "Ingest: CSV -> Parquet"). Unsorted files fall back to `duplicate_keys`.
    """
    import numpy as np

    carry_g: np.ndarray | None = None
    carry_o: np.ndarray | None = None
    dup_keys = 0
    prev_last = None

    def count(g: np.ndarray, o: np.ndarray) -> int:
        if g.size < 2:
            return 0
        # Pack (group offset within the batch, other) into 32 bits when both fit -- sorting uint32 keys is
        # about twice as fast as int64, and 32-bit ids need no widening -- else into 64 bits.
        o_min, o_max = int(o.min()), int(o.max())
        bits = max(o_max - o_min, 1).bit_length()
        g_span = int(g[-1]) - int(g[0])  # g is sorted
        if g.dtype.itemsize <= 4 and o.dtype.itemsize <= 4 and o_min >= 0 and g_span < (1 << (32 - bits)):
            key = (((g - g[0]).astype(np.uint32, copy=False) << np.uint32(bits))
                   | (o - o_min).astype(np.uint32, copy=False))
        else:
            key = (g.astype(np.int64) << 32) | (o.astype(np.int64) & 0xFFFFFFFF)
        key.sort()
        return int(np.count_nonzero(key[1:] == key[:-1]))

    for g_new, o_new in _prefetched_int_columns(path, [group, other], batch_rows):
        if g_new.size == 0:
            continue
        if (prev_last is not None and g_new[0] < prev_last) or np.any(g_new[1:] < g_new[:-1]):
            return duplicate_keys(con, path, [group, other], examples)
        prev_last = g_new[-1]
        g = g_new if carry_g is None else np.concatenate([carry_g, g_new])
        o = o_new if carry_o is None else np.concatenate([carry_o, o_new])
        cut = int(np.searchsorted(g, g[-1]))  # the last group may continue in the next batch
        dup_keys += count(g[:cut], o[:cut])
        carry_g, carry_o = g[cut:], o[cut:]
    if carry_g is not None and carry_o is not None:  # both set together
        dup_keys += count(carry_g, carry_o)
    if dup_keys == 0:
        return Violation(unique_rule([group, other]), 0, [])
    # Error path: exact count of duplicated keys and examples from a hash aggregate.
    return duplicate_keys(con, path, [group, other], examples)


def null_values(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], columns: list[str]
) -> Violation:
    """Count of rows with a NULL in any of `columns`; examples give per-column counts."""
    parts = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL) AS {c}" for c in columns)
    any_null = " OR ".join(f"{c} IS NULL" for c in columns)
    row = _rows(con, f"SELECT count(*) FILTER (WHERE {any_null}) AS n, {parts} FROM {_src(path)}")[0]
    n = row.pop("n")
    return Violation(not_null_rule(columns), int(n), [row] if n else [])


def rating_domain(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], examples: int = 5) -> Violation:
    bad = BAD_RATING_SQL
    n = one_row(con.execute(f"SELECT count(*) FROM {_src(path)} WHERE {bad}"))[0]
    ex = (
        _rows(con, f"SELECT user_id, movie_id, rating FROM {_src(path)} WHERE {bad} LIMIT {examples}")
        if n
        else []
    )
    return Violation(RATING_RULE, int(n), ex)


def orphan_references(
    con: duckdb.DuckDBPyConnection,
    child: str | os.PathLike[str],
    parent: str | os.PathLike[str],
    key: str,
    examples: int = 5,
) -> Violation:
    """Distinct `key` values in `child` that do not exist in `parent`."""
    sql = (
        f"SELECT DISTINCT c.{key} FROM {_src(child)} c ANTI JOIN {_src(parent)} p ON c.{key} = p.{key} "
        f"WHERE c.{key} IS NOT NULL"
    )
    n = one_row(con.execute(f"SELECT count(*) FROM ({sql})"))[0]
    ex = _rows(con, f"{sql} ORDER BY 1 LIMIT {examples}") if n else []
    return Violation(f"every {key} present in the parent table", int(n), ex)


def any_violation(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], not_null: list[str], rating: bool,
    positive: list[str] | tuple[str, ...] = (),
) -> bool:
    """One scan: is any of `not_null` NULL somewhere, any of `positive` zero or negative, or (with `rating`)
    any rating off the domain? The fast path of ingestion; the detailed rules above only run when this says yes."""
    conds = ([f"{c} IS NULL" for c in not_null] + ([f"({bad_id_sql(positive)})"] if positive else [])
             + ([f"({BAD_RATING_SQL})"] if rating else []))
    if not conds:
        return False
    return bool(one_row(con.execute(f"SELECT count(*) FROM {_src(path)} WHERE {' OR '.join(conds)}"))[0])


def describe(v: Violation) -> str:
    """One line for logs and error messages."""
    if v.ok:
        return f"{v.rule}: ok"
    ex = "; ".join(", ".join(f"{k}={val}" for k, val in e.items()) for e in v.examples)
    return f"{v.rule}: {v.count} violation(s)" + (f" (e.g. {ex})" if ex else "")
