"""MovieLens CSV -> typed, validated Parquet with DuckDB (streaming, spills to disk, atomic output).

One pass parses and sorts the CSV into a temporary Parquet file (malformed rows are captured by
DuckDB's reject tables, with their line numbers); a second, column-pruned pass over that Parquet
file validates it; only then is it renamed onto the final path. Any problem raises
`DataValidationError` naming the file, the line(s) or count and what was expected, and leaves what
was stored before untouched.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from movielens_assets.core.data import quality
from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.duck import one_row, parquet_row_count, sql_str
from movielens_assets.core.data.errors import DataValidationError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

MAX_EXAMPLES = 5
DEFAULT_MEMORY_LIMIT = "1400MB"
"""DuckDB memory limit for ingestion unless MOVIELENS_DUCKDB_MEMORY_LIMIT says otherwise: the sort spills
to disk beyond it, so peak memory stays flat whatever the file size. 1.4 GB is the largest bound under half
of pandas' peak at 32M ratings, and the sort of 32M ratings just fits (a 1 GB bound spilled, which cost
time); docs/BENCHMARKS.md, "Ingest: CSV -> Parquet"."""

STREAMING_DUP_CHECK_MIN_ROWS = 4_000_000
"""From this many rows on, unique (a, b) pairs are checked by streaming the sorted file through NumPy
(`quality.duplicate_pairs`, faster there than DuckDB's hash aggregate); below it the hash aggregate is faster
(at 1M rows the streaming path's NumPy and Arrow imports cost more than the check); docs/BENCHMARKS.md,
"Ingest: CSV -> Parquet"."""


@dataclass(frozen=True)
class CsvTable:
    """How one MovieLens CSV file becomes one typed Parquet table."""

    name: str
    filename: str
    csv_columns: dict[str, str]
    """Header names in file order -> DuckDB type used to parse them."""
    select: str
    """Projection from the parsed CSV (alias-free column names) to the typed output columns."""
    order_by: str
    required: bool
    not_null: tuple[str, ...]
    unique: tuple[str, ...]
    allow_empty: bool
    positive: tuple[str, ...] = ()
    """Id columns that must be positive integers (MovieLens ids start at 1): zero or negative is an error."""

    @property
    def header(self) -> list[str]:
        return list(self.csv_columns)

    def empty_select(self) -> str:
        return f"SELECT * FROM (SELECT {self.select} FROM (SELECT {self._null_columns()})) LIMIT 0"

    def _null_columns(self) -> str:
        return ", ".join(f"NULL::{t} AS {c}" for c, t in self.csv_columns.items())


# The year is the last "(YYYY)" (or "(YYYY-YYYY)", "(YYYY–)") group at the end of the title.
_YEAR = r"TRY_CAST(nullif(regexp_extract(trim(title), '\((\d{4})[^()]*\)$', 1), '') AS INTEGER)"

RATINGS = CsvTable(
    name="ratings",
    filename="ratings.csv",
    csv_columns={"userId": "INTEGER", "movieId": "INTEGER", "rating": "DOUBLE", "timestamp": "BIGINT"},
    select=(
        "userId AS user_id, movieId AS movie_id, CAST(rating AS FLOAT) AS rating, "
        "make_timestamp(timestamp * 1000000) AS timestamp"
    ),
    # Exactly the order, no movie_id tie-break: a third sort key cost sort time and, to sort without
    # spilling, more memory than half of pandas' peak (docs/BENCHMARKS.md, "Ingest: CSV -> Parquet"). DuckDB's
    # sort is not stable, so ratings of one user with the same timestamp come in an unspecified order; every
    # consumer orders explicitly with movie_id as the tie-break (splits, Interactions), so everything derived
    # stays deterministic.
    order_by="user_id, timestamp",
    required=True,
    not_null=("user_id", "movie_id", "rating", "timestamp"),
    unique=("user_id", "movie_id"),
    allow_empty=False,
    positive=("user_id", "movie_id"),
)
MOVIES = CsvTable(
    name="movies",
    filename="movies.csv",
    csv_columns={"movieId": "INTEGER", "title": "VARCHAR", "genres": "VARCHAR"},
    select=(
        f"movieId AS movie_id, trim(title) AS title, {_YEAR} AS year, "
        "CASE WHEN genres IS NULL OR trim(genres) IN ('', '(no genres listed)') THEN []::VARCHAR[] "
        "ELSE string_split(trim(genres), '|') END AS genres"
    ),
    order_by="movie_id",
    required=True,
    not_null=("movie_id", "title"),
    unique=("movie_id",),
    allow_empty=False,
    positive=("movie_id",),
)
TAGS = CsvTable(
    name="tags",
    filename="tags.csv",
    csv_columns={"userId": "INTEGER", "movieId": "INTEGER", "tag": "VARCHAR", "timestamp": "BIGINT"},
    select=(
        "userId AS user_id, movieId AS movie_id, tag, make_timestamp(timestamp * 1000000) AS timestamp"
    ),
    order_by="user_id, timestamp, movie_id",
    required=False,
    not_null=("user_id", "movie_id", "timestamp"),
    unique=(),
    allow_empty=True,
    positive=("user_id", "movie_id"),
)
LINKS = CsvTable(
    name="links",
    filename="links.csv",
    csv_columns={"movieId": "INTEGER", "imdbId": "BIGINT", "tmdbId": "INTEGER"},
    select=(
        "movieId AS movie_id, CASE WHEN imdbId IS NULL THEN NULL ELSE printf('tt%07d', imdbId) END AS imdb_id, "
        "tmdbId AS tmdb_id"
    ),
    order_by="movie_id",
    required=False,
    not_null=("movie_id",),
    unique=("movie_id",),
    allow_empty=True,
    positive=("movie_id",),
)
TABLES: dict[str, CsvTable] = {t.name: t for t in (RATINGS, MOVIES, TAGS, LINKS)}


@dataclass(frozen=True)
class IngestResult:
    table: str
    path: Path
    rows: int
    source_file: Path | None
    seconds: float
    note: str | None = None
    """Set when the output is an empty placeholder (optional file absent)."""
    verified: tuple[quality.Violation, ...] = ()
    """The table rules that hold on the written rows, checked while writing (the ingest raises on any
    violation): `verified_rules(spec)`, each with 0 violations — reported as asset check results without
    a second scan of the table."""


def verified_rules(spec: CsvTable) -> tuple[quality.Violation, ...]:
    """What a successful `ingest_csv` of `spec` guarantees: its key unique, its required columns non-NULL, its
    ids positive and (ratings) every rating on the half-star domain."""
    rules = [quality.unique_rule(spec.unique)] if spec.unique else []
    rules.append(quality.not_null_rule(spec.not_null))
    if spec.positive:
        rules.append(quality.positive_rule(spec.positive))
    if spec.name == "ratings":
        rules.append(quality.RATING_RULE)
    return tuple(quality.Violation(rule, 0) for rule in rules)


def _read_csv_sql(spec: CsvTable, csv_path: Path, *, rejects: str | None) -> str:
    cols = "{" + ", ".join(f"{sql_str(c)}: {sql_str(t)}" for c, t in spec.csv_columns.items()) + "}"
    opts = [
        "header = true",
        "auto_detect = false",
        "delim = ','",
        "quote = '\"'",
        "escape = '\"'",
        f"columns = {cols}",
    ]
    if rejects:
        opts += ["store_rejects = true", f"rejects_table = '{rejects}_errors'", f"rejects_scan = '{rejects}_scans'"]
    return f"read_csv({sql_str(csv_path)}, {', '.join(opts)})"


def check_header(spec: CsvTable, csv_path: Path) -> None:
    """The first line must be exactly the MovieLens header (a UTF-8 BOM is tolerated)."""
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    if first == "":
        raise DataValidationError(
            f"{csv_path}: the file is empty; expected the header line "
            f"{','.join(spec.header)!r} followed by data rows"
        )
    found = next(csv.reader([first]), [])
    if [c.strip() for c in found] != spec.header:
        looks_like_data = bool(found) and found[0].strip().lstrip("-").isdigit()
        hint = " (the header line seems to be missing)" if looks_like_data else ""
        raise DataValidationError(
            f"{csv_path}, line 1: expected the header {','.join(spec.header)!r}, found {first.strip()!r}{hint}"
        )


def _raise_rejects(con: duckdb.DuckDBPyConnection, spec: CsvTable, csv_path: Path, rejects: str) -> None:
    n_lines, = one_row(con.execute(f"SELECT count(DISTINCT line) FROM {rejects}_errors"))
    if not n_lines:
        return
    rows = con.execute(
        f"SELECT line, any_value(column_name), any_value(error_type), any_value(csv_line), "
        f"any_value(error_message) FROM {rejects}_errors GROUP BY line ORDER BY line LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    expected = ", ".join(f"{c} {t}" for c, t in spec.csv_columns.items())
    details = "\n".join(
        f"  line {line}: {etype.lower()}{f' in column {col}' if col else ''}: {msg} -- row {raw!r}"
        for line, col, etype, raw, msg in rows
    )
    raise DataValidationError(
        f"{csv_path}: {n_lines} malformed row(s); expected {len(spec.csv_columns)} comma-separated columns "
        f"({expected}). First ones:\n{details}"
    )


def _numbered_csv(spec: CsvTable, csv_path: Path) -> str:
    """The CSV with its file line numbers (header = line 1). Error path only: single-threaded scan."""
    return (
        f"(SELECT row_number() OVER () + 1 AS line, * FROM "
        f"(SELECT {spec.select} FROM {_read_csv_sql(spec, csv_path, rejects=None)}))"
    )


def _locate(spec: CsvTable, csv_path: Path, where: str, columns: str) -> list[tuple]:
    """Find example lines matching `where` by rescanning the CSV in file order."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = true")
        return con.execute(
            f"SELECT line, {columns} FROM {_numbered_csv(spec, csv_path)} WHERE {where} "
            f"ORDER BY line LIMIT {MAX_EXAMPLES}"
        ).fetchall()
    finally:
        con.close()


def _explain_row_violations(con: duckdb.DuckDBPyConnection, spec: CsvTable, csv_path: Path, parquet: Path) -> None:
    """Error path: name the offending lines of NULL required fields or off-domain ratings."""
    nulls = quality.null_values(con, parquet, list(spec.not_null))
    if not nulls.ok:
        cols = [c for c, n in nulls.examples[0].items() if n]
        where = " OR ".join(f"{c} IS NULL" for c in cols)
        lines = _locate(spec, csv_path, where, ", ".join(cols))
        shown = "; ".join(f"line {r[0]}" for r in lines)
        raise DataValidationError(
            f"{csv_path}: {nulls.count} row(s) with an empty value in required field(s) "
            f"{', '.join(cols)} ({shown}); expected a value in every row"
        )
    if spec.positive:
        bad = quality.bad_id_sql(spec.positive)
        (n_bad,) = one_row(con.execute(f"SELECT count(*) FROM read_parquet({sql_str(parquet)}) WHERE {bad}"))
        if n_bad:
            id_cols = ", ".join(spec.positive)
            lines = _locate(spec, csv_path, bad, id_cols)
            shown = "; ".join(f"line {r[0]}: " + ", ".join(f"{c}={v}" for c, v in zip(spec.positive, r[1:],
                                                                                     strict=True))
                              for r in lines)
            raise DataValidationError(
                f"{csv_path}: {n_bad} row(s) with a zero or negative id in ({id_cols}) ({shown}); expected positive "
                "integers, as in every MovieLens release"
            )
    if spec.name == "ratings":
        dom = quality.rating_domain(con, parquet)
        if not dom.ok:
            lines = _locate(spec, csv_path, quality.BAD_RATING_SQL, "rating")
            shown = "; ".join(f"line {line}: rating={r}" for line, r in lines)
            raise DataValidationError(
                f"{csv_path}: {dom.count} rating(s) outside {quality.RATING_DOMAIN_TEXT} ({shown})"
            )


def _validate(con: duckdb.DuckDBPyConnection, spec: CsvTable, csv_path: Path, parquet: Path, rows: int, *,
              rows_checked: bool = False) -> None:
    """The table rules on the written file; `rows_checked`: the NOT NULL / domain rules already held
    during the write (`_guarded`)."""
    if rows == 0 and not spec.allow_empty:
        raise DataValidationError(
            f"{csv_path}: no data rows after the header; the {spec.name} table must not be empty"
        )
    is_ratings = spec.name == "ratings"
    if not rows_checked and quality.any_violation(con, parquet, list(spec.not_null), rating=is_ratings,
                                                  positive=spec.positive):
        _explain_row_violations(con, spec, csv_path, parquet)
    if spec.unique:
        dup = (
            quality.duplicate_pairs(con, parquet, *spec.unique)
            if len(spec.unique) == 2 and rows >= STREAMING_DUP_CHECK_MIN_ROWS
            else quality.duplicate_keys(con, parquet, list(spec.unique))
        )
        if not dup.ok:
            key_cols = list(spec.unique)
            first = dup.examples[0]
            where = " AND ".join(f"{c} = {int(first[c])}" for c in key_cols)
            lines = [r[0] for r in _locate(spec, csv_path, where, key_cols[0])]
            key_txt = ", ".join(f"{c}={first[c]}" for c in key_cols)
            raise DataValidationError(
                f"{csv_path}: {dup.count} duplicated ({', '.join(key_cols)}) key(s); expected each at most once. "
                f"First: {key_txt} on lines {', '.join(map(str, lines))}"
            )


Audit = Callable[["duckdb.DuckDBPyConnection", Path, Path], None]
"""`audit(con, staged, final)`: a rule over the staged (validated, not yet published) file; raising
`DataValidationError` keeps it from replacing `final` (write-audit-publish)."""


def references_audit(parent: Path, key: str = "movie_id", parent_name: str = "movies") -> Audit:
    """An `Audit`: every `key` of the staged table exists in the published `parent` table (ratings -> movies).
    The error names how many ids are missing, a few of them, and that the previous version is kept."""

    def audit(con: duckdb.DuckDBPyConnection, staged: Path, final: Path) -> None:
        v = quality.orphan_references(con, staged, parent, key)
        if v.ok:
            return
        shown = ", ".join(str(e[key]) for e in v.examples)
        kept = "the previously published table is kept" if final.exists() else "nothing was published"
        raise DataValidationError(
            f"{final.name} not published: {v.count} {key} value(s) absent from {parent_name} ({parent}), e.g. "
            f"{key} {shown}; {kept} ({final}). Add them to {parent_name} (and materialize it) or remove the rows."
        )

    return audit


def ingest_csv(
    con: duckdb.DuckDBPyConnection,
    spec: CsvTable,
    csv_dir: Path,
    out_path: Path,
    *,
    dataset: str,
    audit: Audit | None = None,
) -> IngestResult:
    """Parse, type, sort and validate `csv_dir/<spec.filename>` into `out_path` (atomically). `audit`, when
    given, runs on the staged file after the table's own rules and before it replaces `out_path`
    (write-audit-publish): on failure `out_path` keeps its previous version."""
    start = time.perf_counter()
    csv_path = Path(csv_dir) / spec.filename
    kv = {"movielens.dataset": dataset, "movielens.table": spec.name}
    if not csv_path.is_file():
        if spec.required:
            raise DataValidationError(
                f"{csv_path}: file not found; the dataset must provide {spec.filename} with the header "
                f"{','.join(spec.header)!r}"
            )
        note = f"{spec.filename} is absent from {csv_dir}: wrote an empty {spec.name} table"
        with atomic_path(out_path) as tmp:
            _copy(con, spec.empty_select(), tmp, {**kv, "movielens.note": note})
        return IngestResult(spec.name, out_path, 0, None, time.perf_counter() - start, note, verified_rules(spec))

    check_header(spec, csv_path)
    rejects = f"rej_{spec.name}"
    select = f"SELECT {spec.select} FROM {_read_csv_sql(spec, csv_path, rejects=rejects)}"
    kv["movielens.source_file"] = csv_path.name
    try:
        with atomic_path(out_path) as tmp:
            try:  # fast path: the row rules are checked inside the COPY, no second scan
                _copy(con, f"{_guarded(spec, select)} ORDER BY {spec.order_by}", tmp, kv, csv_path)
                rows_checked = True
            except DataValidationError as exc:
                if _ROW_RULE_ERROR not in str(exc):
                    raise
                # error path: write without the guard, then name the offending lines (malformed ones first)
                _drop_rejects(con, rejects)
                _copy(con, f"{select} ORDER BY {spec.order_by}", tmp, kv, csv_path)
                rows_checked = False
            _raise_rejects(con, spec, csv_path, rejects)
            rows = parquet_row_count(con, tmp)
            _validate(con, spec, csv_path, tmp, rows, rows_checked=rows_checked)
            if audit is not None:
                audit(con, tmp, Path(out_path))
    finally:
        _drop_rejects(con, rejects)
    return IngestResult(spec.name, out_path, int(rows), csv_path, time.perf_counter() - start,
                        verified=verified_rules(spec))


_ROW_RULE_ERROR = "movielens-ingest: a row breaks a NOT NULL, positive-id or rating-domain rule"


def _guarded(spec: CsvTable, select: str) -> str:
    """`select` that raises `_ROW_RULE_ERROR` on the first row with a NULL required field, a zero or negative
    id or (ratings) a rating off the half-star domain -- evaluated inside the parallel COPY pipeline."""
    conds = ([f"{c} IS NULL" for c in spec.not_null]
             + ([f"({quality.bad_id_sql(spec.positive)})"] if spec.positive else [])
             + ([f"({quality.BAD_RATING_SQL})"] if spec.name == "ratings" else []))
    if not conds:
        return select
    return (f"SELECT * FROM ({select}) WHERE CASE WHEN {' OR '.join(conds)} "
            f"THEN error({sql_str(_ROW_RULE_ERROR)}) ELSE true END")


def _drop_rejects(con: duckdb.DuckDBPyConnection, rejects: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {rejects}_errors")
    con.execute(f"DROP TABLE IF EXISTS {rejects}_scans")


def _copy(
    con: duckdb.DuckDBPyConnection,
    query: str,
    path: str | os.PathLike[str],
    kv: dict[str, str],
    source: Path | None = None,
) -> None:
    meta = "{" + ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in kv.items()) + "}"
    try:
        con.execute(
            f"COPY ({query}) TO {sql_str(path)} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {meta})"
        )
    except Exception as exc:  # duckdb.Error and subclasses: re-raise naming the output
        import duckdb

        if isinstance(exc, duckdb.Error) and "No space left on device" in str(exc):  # the disk, not the data
            import errno

            raise OSError(errno.ENOSPC, f"No space left on device: {exc}", str(path)) from exc
        if isinstance(exc, duckdb.Error):
            where = f"{source}: " if source else ""
            raise DataValidationError(f"{where}could not be converted to Parquet: {exc}") from exc
        raise
