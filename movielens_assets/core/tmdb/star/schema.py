"""Table specifications: `STAR_TABLES` (columns, Arrow types, keys) and `schema_markdown()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

I32, I64, F64, STR, BOOL = pa.int32(), pa.int64(), pa.float64(), pa.string(), pa.bool_()
DATE, TS, LIST_STR = pa.date32(), pa.timestamp("us"), pa.list_(pa.string())


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool = True
    doc: str = ""


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    where: str | None = None
    """Optional SQL condition on the referencing rows (only those must resolve)."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    kind: Literal["dimension", "bridge"]
    doc: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns],
            metadata={
                "tmdb.star.table": self.name,
                "tmdb.star.primary_key": ",".join(self.primary_key),
            },
        )

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, typ: pa.DataType, doc: str = "", nullable: bool = True) -> Column:
    return Column(name, typ, nullable, doc)


def _pk(name: str, typ: pa.DataType, doc: str = "") -> Column:
    return Column(name, typ, False, doc)


def _fk(cols: str | tuple[str, ...], table: str, ref: str | tuple[str, ...], where: str | None = None):
    def as_tuple(v: str | tuple[str, ...]) -> tuple[str, ...]:
        return (v,) if isinstance(v, str) else tuple(v)

    return ForeignKey(as_tuple(cols), table, as_tuple(ref), where)


_MOVIE_FK = _fk("tmdb_id", "tmdb_movie", "tmdb_id")

_SPECS: list[TableSpec] = [
    TableSpec(
        "tmdb_movie", "dimension", "One row per TMDb movie with an ok payload linked to MovieLens.",
        (
            _pk("tmdb_id", I32, "TMDb movie id (`id`)"),
            _c("imdb_id", STR, "`tt…`; not unique"),
            _c("title", STR, "localized (en-US)"),
            _c("original_title", STR),
            _c("original_language", STR, "ISO-639-1"),
            _c("overview", STR),
            _c("tagline", STR),
            _c("release_date", DATE, "primary release; `\"\"` -> NULL"),
            _c("runtime", I32, "minutes; 0 -> NULL"),
            _c("budget", I64, "USD; 0 (unknown) -> NULL"),
            _c("revenue", I64, "USD; 0 (unknown) -> NULL"),
            _c("popularity", F64, "drifts daily"),
            _c("vote_average", F64, "0-10"),
            _c("vote_count", I32),
            _c("status", STR, "Rumored … Released, Canceled"),
            _c("adult", BOOL),
            _c("video", BOOL),
            _c("softcore", BOOL, "undocumented flag; NULL when absent"),
            _c("homepage", STR),
            _c("poster_path", STR, "relative image path"),
            _c("backdrop_path", STR, "relative image path"),
            _c("collection_id", I32, "NULL when not in a collection"),
            _c("origin_country", LIST_STR, "ISO-3166-1 codes, payload order"),
            _c("fetched_at", TS, "UTC time the payload was fetched", nullable=False),
        ),
        ("tmdb_id",),
        (
            _fk("collection_id", "tmdb_collection", "collection_id"),
            _fk("original_language", "tmdb_language", "iso_639_1"),
        ),
    ),
    TableSpec(
        "tmdb_person", "dimension", "People from credits (cast and crew); latest fetched attributes.",
        (
            _pk("person_id", I32, "TMDb person id"),
            _c("name", STR),
            _c("original_name", STR),
            _c("gender", I32, "0 not set, 1 female, 2 male, 3 non-binary"),
            _c("known_for_department", STR),
            _c("popularity", F64, "from the latest fetched payload"),
            _c("profile_path", STR),
            _c("adult", BOOL),
            _c("fetched_at", TS, "fetch time of the payload the attributes come from", nullable=False),
        ),
        ("person_id",),
    ),
    TableSpec(
        "tmdb_genre", "dimension", "Movie genres (names in the crawl language).",
        (_pk("genre_id", I32), _c("name", STR)),
        ("genre_id",),
    ),
    TableSpec(
        "tmdb_keyword", "dimension", "Keywords.",
        (_pk("keyword_id", I32), _c("name", STR)),
        ("keyword_id",),
    ),
    TableSpec(
        "tmdb_company", "dimension", "Production companies.",
        (
            _pk("company_id", I32),
            _c("name", STR),
            _c("origin_country", STR, "ISO-3166-1; `\"\"` -> NULL"),
            _c("logo_path", STR),
        ),
        ("company_id",),
        (_fk("origin_country", "tmdb_country", "iso_3166_1"),),
    ),
    TableSpec(
        "tmdb_country", "dimension", "Every country code referenced; name from production_countries.",
        (_pk("iso_3166_1", STR, "2 letters"), _c("name", STR, "NULL when no payload named it")),
        ("iso_3166_1",),
    ),
    TableSpec(
        "tmdb_language", "dimension", "Every language code referenced; names from spoken_languages.",
        (
            _pk("iso_639_1", STR, "2 letters (`xx` = no language)"),
            _c("english_name", STR, "NULL when no payload named it"),
            _c("name", STR, "native name"),
        ),
        ("iso_639_1",),
    ),
    TableSpec(
        "tmdb_collection", "dimension", "Collections (`belongs_to_collection`).",
        (_pk("collection_id", I32), _c("name", STR), _c("poster_path", STR), _c("backdrop_path", STR)),
        ("collection_id",),
    ),
    TableSpec(
        "tmdb_cast", "bridge", "Cast credits: movie x person.",
        (
            _pk("credit_id", STR, "TMDb credit id (24 hex)"),
            _pk("tmdb_id", I32),
            _pk("person_id", I32),
            _c("character", STR),
            _c("cast_order", I32, "TMDb `order` (billing position)"),
            _c("cast_id", I32),
        ),
        ("credit_id",),
        (_MOVIE_FK, _fk("person_id", "tmdb_person", "person_id")),
    ),
    TableSpec(
        "tmdb_crew", "bridge", "Crew credits: one row per job (a person can hold several).",
        (
            _pk("credit_id", STR, "TMDb credit id (24 hex)"),
            _pk("tmdb_id", I32),
            _pk("person_id", I32),
            _c("department", STR),
            _c("job", STR),
        ),
        ("credit_id",),
        (_MOVIE_FK, _fk("person_id", "tmdb_person", "person_id")),
    ),
    TableSpec(
        "tmdb_movie_genre", "bridge", "Movie x genre.",
        (_pk("tmdb_id", I32), _pk("genre_id", I32), _pk("position", I32, "0-based order in the payload")),
        ("tmdb_id", "genre_id"),
        (_MOVIE_FK, _fk("genre_id", "tmdb_genre", "genre_id")),
    ),
    TableSpec(
        "tmdb_movie_keyword", "bridge", "Movie x keyword.",
        (_pk("tmdb_id", I32), _pk("keyword_id", I32), _pk("position", I32, "0-based order in the payload")),
        ("tmdb_id", "keyword_id"),
        (_MOVIE_FK, _fk("keyword_id", "tmdb_keyword", "keyword_id")),
    ),
    TableSpec(
        "tmdb_movie_company", "bridge", "Movie x production company.",
        (_pk("tmdb_id", I32), _pk("company_id", I32), _pk("position", I32, "0-based order in the payload")),
        ("tmdb_id", "company_id"),
        (_MOVIE_FK, _fk("company_id", "tmdb_company", "company_id")),
    ),
    TableSpec(
        "tmdb_movie_country", "bridge", "Movie x country: production_countries and origin_country.",
        (
            _pk("tmdb_id", I32),
            _pk("iso_3166_1", STR),
            _pk("role", STR, "`production` or `origin`"),
            _pk("position", I32, "0-based order in its payload list"),
        ),
        ("tmdb_id", "iso_3166_1", "role"),
        (_MOVIE_FK, _fk("iso_3166_1", "tmdb_country", "iso_3166_1")),
    ),
    TableSpec(
        "tmdb_movie_language", "bridge", "Movie x spoken language.",
        (_pk("tmdb_id", I32), _pk("iso_639_1", STR), _pk("position", I32, "0-based order in the payload")),
        ("tmdb_id", "iso_639_1"),
        (_MOVIE_FK, _fk("iso_639_1", "tmdb_language", "iso_639_1")),
    ),
    TableSpec(
        "tmdb_release_date", "bridge", "Release dates per country (`release_dates` append).",
        (
            _pk("tmdb_id", I32),
            _pk("position", I32, "0-based order over all countries' entries of the movie"),
            _c("iso_3166_1", STR, "ISO-3166-1 of the `results[]` entry"),
            _c("release_date", TS, "UTC"),
            _c("type", I32, "1 Premiere, 2 Theatrical (limited), 3 Theatrical, 4 Digital, 5 Physical, 6 TV"),
            _c("certification", STR),
            _c("note", STR),
            _c("iso_639_1", STR, "ISO-639-1; `\"\"` -> NULL"),
            _c("descriptors", LIST_STR),
        ),
        ("tmdb_id", "position"),
        (
            _MOVIE_FK,
            _fk("iso_3166_1", "tmdb_country", "iso_3166_1"),
            _fk("iso_639_1", "tmdb_language", "iso_639_1"),
        ),
    ),
    TableSpec(
        "movie_tmdb", "bridge", "MovieLens movie -> TMDb movie. Every MovieLens movie has a row.",
        (
            _pk("movie_id", I32, "MovieLens movieId"),
            _c("imdb_id", STR, "from links"),
            _c("tmdb_id", I32, "NULL when neither links nor /find gave one"),
            _c("source", STR, "`links` or `find`; NULL without tmdb_id"),
            _c("landing_outcome", STR, "`ok`, `not_found`, `failed`; NULL when never fetched"),
            _c("has_payload", BOOL, "tmdb_id has a tmdb_movie row", nullable=False),
            _c("tmdb_id_shared", BOOL, "another MovieLens movie maps to the same tmdb_id", nullable=False),
        ),
        ("movie_id",),
        (_fk("tmdb_id", "tmdb_movie", "tmdb_id", where="has_payload"),),
    ),
]

STAR_TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}
"""name -> TableSpec, in build order (dimensions first)."""


def _type_name(typ: pa.DataType) -> str:
    names = {I32: "INT32", I64: "INT64", F64: "DOUBLE", STR: "VARCHAR", BOOL: "BOOLEAN",
             DATE: "DATE", TS: "TIMESTAMP", LIST_STR: "LIST<VARCHAR>"}
    return names[typ]


def schema_markdown() -> str:
    """Markdown description of every table, generated from STAR_TABLES (embedded in docs/TMDB.md)."""
    out: list[str] = []
    for spec in STAR_TABLES.values():
        out.append(f"### `{spec.name}` ({spec.kind})\n")
        out.append(f"{spec.doc} Primary key: ({', '.join(spec.primary_key)}).\n")
        out.append("| column | type | null | key | notes |")
        out.append("|---|---|---|---|---|")
        fks = {fk.columns[0]: fk for fk in spec.foreign_keys if len(fk.columns) == 1}
        for col in spec.columns:
            keys = []
            if col.name in spec.primary_key:
                keys.append("PK")
            if col.name in fks:
                fk = fks[col.name]
                cond = f" when {fk.where}" if fk.where else ""
                keys.append(f"FK -> {fk.ref_table}.{fk.ref_columns[0]}{cond}")
            out.append(
                f"| `{col.name}` | `{_type_name(col.type)}` | {'yes' if col.nullable else 'no'} "
                f"| {', '.join(keys)} | {col.doc} |"
            )
        out.append("")
    return "\n".join(out)
