"""Metadata shared by assets: Markdown tables, Parquet table summaries, inline plots."""

from __future__ import annotations

import base64
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


INLINE_PNG_MAX_BYTES = 150_000
"""Largest PNG inlined in metadata (base64 adds a third; the event log stores the text of every run)."""


def png_markdown(path: Path, alt: str, max_bytes: int = INLINE_PNG_MAX_BYTES) -> dg.MarkdownMetadataValue:
    """The PNG at `path` as Markdown metadata that the Dagster UI shows as an image: `![alt](data:image/png;
    base64,…)`. The UI renders Markdown metadata with react-markdown + rehype-sanitize whose schema allows the
    `data:` protocol for `img src` (dagster-webserver 1.13's `MarkdownWithPlugins`); a file URL or a lake path
    would not load in the browser. A PNG over `max_bytes` is named by its path instead of inlined."""
    data = path.read_bytes()
    if len(data) > max_bytes:
        return dg.MetadataValue.md(f"`{path}` ({len(data) / 1024:.0f} KB: too large to show inline)")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})")


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
