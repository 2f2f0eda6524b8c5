"""Metadata shared by assets that write Parquet tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from movielens_assets.core.data.duck import parquet_row_count, parquet_schema, sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


def markdown_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in r) + " |\n" for r in rows)


def parquet_table_metadata(
    con: duckdb.DuckDBPyConnection, path: Path, *, dataset: str, preview_rows: int = 10
) -> dict[str, Any]:
    """Row count, column schema, a preview, the source dataset, the path and size of a Parquet file."""
    schema = parquet_schema(con, path)
    cur = con.execute(f"SELECT * FROM read_parquet({sql_str(path)}) LIMIT {preview_rows}")
    preview = markdown_table([d[0] for d in cur.description], cur.fetchall())
    return {
        "dagster/row_count": parquet_row_count(con, path),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=dtype) for name, dtype in schema]
        ),
        "preview": dg.MetadataValue.md(preview),
        "dataset": dataset,
        "path": dg.MetadataValue.path(str(path)),
        "size_mb": round(path.stat().st_size / 2**20, 3),
    }
