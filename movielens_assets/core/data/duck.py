"""DuckDB connection and Parquet helpers shared by every relational step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


def connect(
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that spills to `temp_dir` instead of running out of memory."""
    import duckdb

    con = duckdb.connect(database=":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {sql_str(temp_dir)}")
    # Sorted outputs only need order where ORDER BY asks for it.
    con.execute("SET preserve_insertion_order = false")
    return con


def sql_str(value: Any) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def one_row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The first row of the result of `cur`, for queries that always return one (an aggregate without GROUP BY)."""
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


def parquet_schema(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(column, DuckDB type) pairs of a Parquet file."""
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(path)})").fetchall()
    return [(r[0], r[1]) for r in rows]


def parquet_row_count(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str]) -> int:
    """Row count from the Parquet footer (no data scan)."""
    (n,) = one_row(con.execute(
        f"SELECT coalesce(sum(row_group_num_rows), 0) FROM "
        f"(SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata({sql_str(path)}))"
    ))
    return int(n)


def parquet_kv_metadata(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str]) -> dict[str, str]:
    rows = con.execute(
        f"SELECT key::VARCHAR, value::VARCHAR FROM parquet_kv_metadata({sql_str(path)})"
    ).fetchall()
    return dict(rows)


def register_parquet_view(con: duckdb.DuckDBPyConnection, name: str, path: str | os.PathLike[str] | None,
                          columns: str) -> str:
    """View `name` over the Parquet file `path`, or an EMPTY view typed by `columns` ("col TYPE, ...") when the
    file is absent: optional inputs (TMDb tables, tags) then join as no rows. Returns used / empty / absent."""
    if path is not None and Path(path).is_file():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet({sql_str(path)})")
        ((n,),) = con.execute(f"SELECT count(*) FROM {name}").fetchall()  # fetchall: no unfinished result
        return "used" if n else "empty"
    cols = [c.strip().split(" ", 1) for c in columns.split(",")]
    select = ", ".join(f"NULL::{typ} AS {col}" for col, typ in cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {select} WHERE false")
    return "absent"
