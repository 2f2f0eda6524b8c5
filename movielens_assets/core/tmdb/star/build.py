"""`build_star_schema`: landing zone + links -> one Parquet file per STAR_TABLES table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.duck import connect
from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.landing import LandingZone
from movielens_assets.core.tmdb.star.flatten import _Flattener
from movielens_assets.core.tmdb.star.schema import I32, STAR_TABLES, STR, TableSpec
from movielens_assets.core.tmdb.star.sql import _MOVIE_TMDB_SQL, _SQL, _coverage


def _read_links(links: pa.Table | str | os.PathLike[str]) -> pa.Table:
    source = "links table"
    if not isinstance(links, pa.Table):
        source = str(links)
        if not Path(links).exists():
            raise DataValidationError(f"links file not found: {links}")
        links = pq.read_table(links)
    missing = [c for c in ("movie_id", "imdb_id", "tmdb_id") if c not in links.column_names]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)}")
    try:
        table = pa.table({
            "movie_id": links["movie_id"].cast(I32),
            "imdb_id": links["imdb_id"].cast(STR),
            "tmdb_id": links["tmdb_id"].cast(I32),
        })
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataValidationError(f"{source}: cannot cast columns to INT32/VARCHAR/INT32: {exc}") from exc
    if table["movie_id"].null_count:
        raise DataValidationError(f"{source}: movie_id has {table['movie_id'].null_count} NULL value(s)")
    return table


def _write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _cast(spec: TableSpec, table: pa.Table) -> pa.Table:
    table = table.select(spec.column_names)
    for col in spec.columns:
        if not col.nullable and table[col.name].null_count:
            raise DataValidationError(f"{spec.name}: column {col.name} has NULL values")
    return table.cast(spec.schema)


def build_star_schema(
    landing: LandingZone,
    links: pa.Table | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    resolved: Mapping[int, int] | None = None,
    *,
    batch_size: int = 2000,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Build every STAR_TABLES table from the landing zone's winning ok payloads.

    `links`: processed links (movie_id INT32, imdb_id VARCHAR, tmdb_id INT32 nullable) as an
    Arrow table or a Parquet path. `resolved`: movie_id -> tmdb_id found via /find for movies whose
    links row has no tmdb_id (links win on conflict; both counted in the coverage).
    Only payloads of tmdb_ids linked to a MovieLens movie are used.

    Writes `<out_dir>/<table>.parquet` (each atomically) and returns
    `{table: {"rows": n, "path": str}, ..., "coverage": {...}}`.
    """
    out = Path(out_dir)
    links_table = _read_links(links)
    movie_ids = links_table["movie_id"].to_pylist()
    if len(set(movie_ids)) != len(movie_ids):
        raise DataValidationError("links table: movie_id is not unique")
    known_movies = set(movie_ids)
    links_tmdb = dict(zip(movie_ids, links_table["tmdb_id"].to_pylist(), strict=True))

    resolved_rows: list[tuple[int, int]] = []
    resolved_conflicts = resolved_unknown = 0
    for movie_id, tmdb_id in sorted((resolved or {}).items()):
        if type(movie_id) is not int or type(tmdb_id) is not int:
            raise DataValidationError(f"resolved mapping: {movie_id!r} -> {tmdb_id!r} is not int -> int")
        if movie_id not in known_movies:
            resolved_unknown += 1
            continue
        if links_tmdb[movie_id] is not None and links_tmdb[movie_id] != tmdb_id:
            resolved_conflicts += 1
        resolved_rows.append((movie_id, tmdb_id))
    resolved_table = pa.table({
        "movie_id": pa.array([r[0] for r in resolved_rows], I32),
        "tmdb_id": pa.array([r[1] for r in resolved_rows], I32),
    })

    wanted = {t for t in links_tmdb.values() if t is not None}
    wanted.update(t for m, t in resolved_rows if links_tmdb[m] is None)

    index = landing.latest()
    outcome_table = index.select(["tmdb_id", "outcome"])

    flat = _Flattener(batch_size=batch_size)
    for record in landing.iter_latest(outcomes=("ok",), ids=wanted):
        r = record.result
        flat.add(r.tmdb_id, r.fetched_at, r.payload, f"chunk {record.chunk} line {record.line}")
    staging = flat.tables()

    con = connect(memory_limit=memory_limit, threads=threads)
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, table in staging.items():
            con.register(f"stg_{name}", table)
        con.register("stg_links", links_table)
        con.register("stg_resolved", resolved_table)
        con.register("stg_outcome", outcome_table)
        _check_dates(con, flat)

        # Each table is written as soon as it is computed (bounded memory: only tmdb_movie and
        # movie_tmdb stay registered); payload validation has already happened above.
        out.mkdir(parents=True, exist_ok=True)
        report: dict[str, dict[str, Any]] = {}
        n_cast = n_crew = 0
        for name in STAR_TABLES:
            sql = _MOVIE_TMDB_SQL if name == "movie_tmdb" else _SQL[name]
            table = _cast(STAR_TABLES[name], con.sql(sql).to_arrow_table())
            path = out / STAR_TABLES[name].file_name
            _write_parquet(table, path)
            report[name] = {"rows": len(table), "path": str(path)}
            if name in ("tmdb_movie", "movie_tmdb"):
                con.register(name, table)
            n_cast = len(table) if name == "tmdb_cast" else n_cast
            n_crew = len(table) if name == "tmdb_crew" else n_crew
            del table

        coverage = _coverage(con)
        coverage.update({
            "payloads_used": report["tmdb_movie"]["rows"],
            "resolved_conflicts": resolved_conflicts,
            "resolved_unknown_movies": resolved_unknown,
            "duplicate_credit_ids_dropped": len(staging["cast"]) - n_cast + len(staging["crew"]) - n_crew,
        })
    finally:
        con.close()

    report["coverage"] = coverage
    return report


def _check_dates(con: duckdb.DuckDBPyConnection, flat: _Flattener) -> None:
    """Non-empty dates that do not parse are a bad payload, not a silent NULL."""
    checks = (
        ("stg_movie", "release_date", "DATE", "release_date"),
        ("stg_release", "release_date", "TIMESTAMPTZ", "release_dates.results[].release_dates[].release_date"),
    )
    for table, col, typ, path in checks:
        bad = con.execute(
            f"SELECT tmdb_id, {col} FROM {table} WHERE NULLIF({col}, '') IS NOT NULL "
            f"AND TRY_CAST({col} AS {typ}) IS NULL ORDER BY tmdb_id LIMIT 1"
        ).fetchone()
        if bad:
            raise flat._err(bad[0], f"field '{path}' = {bad[1]!r} is not a valid {typ.lower()}")
