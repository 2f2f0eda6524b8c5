"""TMDb star schema: dimensions + bridges built from the landing zone's winning `ok` payloads.

`STAR_TABLES` is the single description of every table (columns, Arrow types, primary key,
foreign keys); the builder casts its output to it, `check_star_schema` verifies against it and
docs/TMDB.md embeds `schema_markdown()`. Payload JSON is flattened once into column buffers (the
only per-record Python), everything else — deduplication, NULL normalisation, date parsing,
joins — is DuckDB SQL over Arrow tables.

Normalisation rules (documented in docs/TMDB.md):
- `""` -> NULL for every text column; `release_date` `""` -> NULL; `runtime`, `budget`, `revenue`
  `0` -> NULL (TMDb uses 0 for "unknown").
- Dimension rows seen in several payloads (a person's popularity, a genre name, ...) take their
  attributes from the latest fetched payload (ties: higher tmdb_id, then credit_id).
- Country / language dimensions hold every code referenced anywhere (movie origin_country,
  original_language, company origin_country, release dates); `name` is NULL when no payload named it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.duck import connect, one_row, sql_str
from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.landing import LandingZone

# -- table specifications ---------------------------------------------------------------------

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


# -- payload flattening -----------------------------------------------------------------------

_MOVIE_SCALARS: dict[str, pa.DataType] = {
    "imdb_id": STR, "title": STR, "original_title": STR, "original_language": STR,
    "overview": STR, "tagline": STR, "release_date": STR, "runtime": I32, "budget": I64,
    "revenue": I64, "popularity": F64, "vote_average": F64, "vote_count": I32, "status": STR,
    "adult": BOOL, "video": BOOL, "softcore": BOOL, "homepage": STR, "poster_path": STR,
    "backdrop_path": STR,
}

_STAGING: dict[str, dict[str, pa.DataType]] = {
    "movie": {"tmdb_id": I32, "fetched_at": TS, **_MOVIE_SCALARS, "collection_id": I32,
              "origin_country": LIST_STR},
    "collection": {"tmdb_id": I32, "fetched_at": TS, "collection_id": I32, "name": STR,
                   "poster_path": STR, "backdrop_path": STR},
    "person": {"tmdb_id": I32, "fetched_at": TS, "credit_id": STR, "person_id": I32, "name": STR,
               "original_name": STR, "gender": I32, "known_for_department": STR,
               "popularity": F64, "profile_path": STR, "adult": BOOL},
    "cast": {"tmdb_id": I32, "credit_id": STR, "person_id": I32, "character": STR,
             "cast_order": I32, "cast_id": I32},
    "crew": {"tmdb_id": I32, "credit_id": STR, "person_id": I32, "department": STR, "job": STR},
    "genre": {"tmdb_id": I32, "fetched_at": TS, "genre_id": I32, "name": STR, "position": I32},
    "keyword": {"tmdb_id": I32, "fetched_at": TS, "keyword_id": I32, "name": STR, "position": I32},
    "company": {"tmdb_id": I32, "fetched_at": TS, "company_id": I32, "name": STR,
                "origin_country": STR, "logo_path": STR, "position": I32},
    "country": {"tmdb_id": I32, "fetched_at": TS, "iso_3166_1": STR, "name": STR, "position": I32},
    "language": {"tmdb_id": I32, "fetched_at": TS, "iso_639_1": STR, "english_name": STR,
                 "name": STR, "position": I32},
    "release": {"tmdb_id": I32, "position": I32, "iso_3166_1": STR, "release_date": STR,
                "type": I32, "certification": STR, "note": STR, "iso_639_1": STR,
                "descriptors": LIST_STR},
}

# Payload field each staging column comes from (for error messages).
_SOURCE_FIELD: dict[str, str] = {
    "collection": "belongs_to_collection", "person": "credits.cast/crew[]",
    "cast": "credits.cast[]", "crew": "credits.crew[]", "genre": "genres[]",
    "keyword": "keywords.keywords[]", "company": "production_companies[]",
    "country": "production_countries[]", "language": "spoken_languages[]",
    "release": "release_dates.results[].release_dates[]",
}
_RENAMED = {("cast", "cast_order"): "order", ("release", "type"): "type"}

_INT_RANGE = {I32: (-(2**31), 2**31 - 1), I64: (-(2**63), 2**63 - 1)}


def _value_ok(value: Any, typ: pa.DataType) -> bool:
    if value is None:
        return True
    if typ in _INT_RANGE:
        if type(value) is float and value.is_integer():
            value = int(value)
        lo, hi = _INT_RANGE[typ]
        return type(value) is int and lo <= value <= hi
    if typ == F64:
        return type(value) in (int, float)
    if typ == STR:
        return isinstance(value, str)
    if typ == BOOL:
        return isinstance(value, bool)
    if typ == TS:
        return type(value) is int
    if typ == LIST_STR:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(typ)


_COMPATIBLE_INFERRED = {
    "int": (pa.types.is_integer, pa.types.is_floating, pa.types.is_null),
    "float": (pa.types.is_integer, pa.types.is_floating, pa.types.is_null),
    "str": (pa.types.is_string, pa.types.is_large_string, pa.types.is_null),
    "bool": (pa.types.is_boolean, pa.types.is_null),
}


def _kind(typ: pa.DataType) -> str:
    if typ in _INT_RANGE or typ == TS:
        return "int"
    return {F64: "float", STR: "str", BOOL: "bool", LIST_STR: "list"}[typ]


def _fast_array(values: list[Any], typ: pa.DataType) -> pa.Array:
    """Strict conversion: infer, check the inferred kind, cast safely (no silent truncation)."""
    if typ == TS:
        return pa.array(values, I64).cast(TS)
    inferred = pa.array(values)
    kind = _kind(typ)
    if kind == "list":
        ok = pa.types.is_null(inferred.type) or (
            pa.types.is_list(inferred.type)
            and (pa.types.is_string(inferred.type.value_type) or pa.types.is_null(inferred.type.value_type))
        )
    else:
        ok = any(test(inferred.type) for test in _COMPATIBLE_INFERRED[kind])
    if not ok:
        raise TypeError(f"inferred {inferred.type}, expected {typ}")
    return inferred.cast(typ, safe=True)


class _Flattener:
    """Turns payloads into staging column buffers, flushed into Arrow batches."""

    def __init__(self, batch_size: int = 2000) -> None:
        self.batch_size = batch_size
        self.buffers: dict[str, dict[str, list[Any]]] = {name: {col: [] for col in cols}
                                                         for name, cols in _STAGING.items()}
        self.batches: dict[str, list[pa.Table]] = {name: [] for name in _STAGING}
        self.where: dict[int, str] = {}
        self.pending = 0

    def _err(self, tmdb_id: int, what: str) -> DataValidationError:
        return DataValidationError(f"TMDb payload tmdb_id {tmdb_id} ({self.where.get(tmdb_id, '?')}): {what}")

    def _list(self, tmdb_id: int, obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._err(tmdb_id, f"field '{path}' must be a list, got {type(value).__name__}")
        return value

    def _obj(self, tmdb_id: int, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self._err(tmdb_id, f"field '{path}' must be an object, got {value!r:.80}")
        return value

    def _id(self, tmdb_id: int, obj: Mapping[str, Any], key: str, path: str) -> int:
        value = obj.get(key)
        if type(value) is not int:
            raise self._err(tmdb_id, f"field '{path}.{key}' must be an integer, got {value!r:.80}")
        return value

    def _code(self, tmdb_id: int, obj: Mapping[str, Any], key: str, path: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise self._err(tmdb_id, f"field '{path}.{key}' must be a non-empty string, got {value!r:.80}")
        return value

    def add(self, tmdb_id: int, fetched_at: float, payload: object, where: str) -> None:
        """Buffer the rows of one landed payload (any decoded JSON: validated here)."""
        self.where[tmdb_id] = where
        b = self.buffers
        if not isinstance(payload, dict):
            raise self._err(tmdb_id, "payload is not a JSON object")
        pid = payload.get("id")
        if type(pid) is not int:
            raise self._err(tmdb_id, f"field 'id' must be an integer, got {pid!r:.80}")
        if pid != tmdb_id:
            raise self._err(tmdb_id, f"field 'id' is {pid}, but the record was fetched as {tmdb_id}")
        ts = round(fetched_at * 1_000_000)

        m = b["movie"]
        m["tmdb_id"].append(tmdb_id)
        m["fetched_at"].append(ts)
        for key in _MOVIE_SCALARS:
            m[key].append(payload.get(key))
        m["origin_country"].append(self._list(tmdb_id, payload, "origin_country", "origin_country"))

        coll = payload.get("belongs_to_collection")
        if coll is None:
            m["collection_id"].append(None)
        else:
            coll = self._obj(tmdb_id, coll, "belongs_to_collection")
            cid = self._id(tmdb_id, coll, "id", "belongs_to_collection")
            m["collection_id"].append(cid)
            c = b["collection"]
            for col, value in (("tmdb_id", tmdb_id), ("fetched_at", ts), ("collection_id", cid),
                               ("name", coll.get("name")), ("poster_path", coll.get("poster_path")),
                               ("backdrop_path", coll.get("backdrop_path"))):
                c[col].append(value)

        for kind, id_key, path, items in (
            ("genre", "genre_id", "genres[]", self._list(tmdb_id, payload, "genres", "genres")),
            ("keyword", "keyword_id", "keywords.keywords[]", self._keywords(tmdb_id, payload)),
        ):
            buf = b[kind]
            for pos, item in enumerate(items):
                item = self._obj(tmdb_id, item, path)
                buf["tmdb_id"].append(tmdb_id)
                buf["fetched_at"].append(ts)
                buf[id_key].append(self._id(tmdb_id, item, "id", path))
                buf["name"].append(item.get("name"))
                buf["position"].append(pos)

        buf = b["company"]
        path = "production_companies[]"
        for pos, item in enumerate(self._list(tmdb_id, payload, "production_companies", path[:-2])):
            item = self._obj(tmdb_id, item, path)
            buf["tmdb_id"].append(tmdb_id)
            buf["fetched_at"].append(ts)
            buf["company_id"].append(self._id(tmdb_id, item, "id", path))
            buf["name"].append(item.get("name"))
            buf["origin_country"].append(item.get("origin_country"))
            buf["logo_path"].append(item.get("logo_path"))
            buf["position"].append(pos)

        buf = b["country"]
        path = "production_countries[]"
        for pos, item in enumerate(self._list(tmdb_id, payload, "production_countries", path[:-2])):
            item = self._obj(tmdb_id, item, path)
            buf["tmdb_id"].append(tmdb_id)
            buf["fetched_at"].append(ts)
            buf["iso_3166_1"].append(self._code(tmdb_id, item, "iso_3166_1", path))
            buf["name"].append(item.get("name"))
            buf["position"].append(pos)

        buf = b["language"]
        path = "spoken_languages[]"
        for pos, item in enumerate(self._list(tmdb_id, payload, "spoken_languages", path[:-2])):
            item = self._obj(tmdb_id, item, path)
            buf["tmdb_id"].append(tmdb_id)
            buf["fetched_at"].append(ts)
            buf["iso_639_1"].append(self._code(tmdb_id, item, "iso_639_1", path))
            buf["english_name"].append(item.get("english_name"))
            buf["name"].append(item.get("name"))
            buf["position"].append(pos)

        credits = payload.get("credits")
        credits = {} if credits is None else self._obj(tmdb_id, credits, "credits")
        person = b["person"]
        for kind, path in (("cast", "credits.cast[]"), ("crew", "credits.crew[]")):
            buf = b[kind]
            for item in self._list(tmdb_id, credits, kind, path[:-2]):
                item = self._obj(tmdb_id, item, path)
                person_id = self._id(tmdb_id, item, "id", path)
                credit_id = self._code(tmdb_id, item, "credit_id", path)
                buf["tmdb_id"].append(tmdb_id)
                buf["credit_id"].append(credit_id)
                buf["person_id"].append(person_id)
                if kind == "cast":
                    buf["character"].append(item.get("character"))
                    buf["cast_order"].append(item.get("order"))
                    buf["cast_id"].append(item.get("cast_id"))
                else:
                    buf["department"].append(item.get("department"))
                    buf["job"].append(item.get("job"))
                person["tmdb_id"].append(tmdb_id)
                person["fetched_at"].append(ts)
                person["credit_id"].append(credit_id)
                person["person_id"].append(person_id)
                for key in ("name", "original_name", "gender", "known_for_department",
                            "popularity", "profile_path", "adult"):
                    person[key].append(item.get(key))

        releases = payload.get("release_dates")
        releases = {} if releases is None else self._obj(tmdb_id, releases, "release_dates")
        buf = b["release"]
        pos = 0
        for country in self._list(tmdb_id, releases, "results", "release_dates.results"):
            country = self._obj(tmdb_id, country, "release_dates.results[]")
            code = country.get("iso_3166_1")
            path = "release_dates.results[].release_dates"
            for item in self._list(tmdb_id, country, "release_dates", path):
                item = self._obj(tmdb_id, item, path + "[]")
                buf["tmdb_id"].append(tmdb_id)
                buf["position"].append(pos)
                buf["iso_3166_1"].append(code)
                for key in ("release_date", "type", "certification", "note", "iso_639_1"):
                    buf[key].append(item.get(key))
                descriptors = item.get("descriptors")
                buf["descriptors"].append([] if descriptors is None else descriptors)
                pos += 1

        self.pending += 1
        if self.pending >= self.batch_size:
            self.flush()

    def _keywords(self, tmdb_id: int, payload: Mapping[str, Any]) -> list[Any]:
        block = payload.get("keywords")
        if block is None:
            return []
        block = self._obj(tmdb_id, block, "keywords")
        return self._list(tmdb_id, block, "keywords", "keywords.keywords")

    def flush(self) -> None:
        for name, cols in _STAGING.items():
            buf = self.buffers[name]
            if not buf["tmdb_id"]:
                continue
            arrays = [self._array(name, col, buf[col], typ, buf["tmdb_id"]) for col, typ in cols.items()]
            self.batches[name].append(pa.Table.from_arrays(arrays, names=list(cols)))
            self.buffers[name] = {col: [] for col in cols}
        self.pending = 0

    def _array(self, table: str, col: str, values: list[Any], typ: pa.DataType, ids: list[int]) -> pa.Array:
        try:
            return _fast_array(values, typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            for value, tmdb_id in zip(values, ids, strict=True):
                if not _value_ok(value, typ):
                    src = _SOURCE_FIELD.get(table)
                    name = _RENAMED.get((table, col), col)
                    path = f"{src}.{name}" if src else name
                    raise self._err(
                        tmdb_id, f"field '{path}' = {value!r:.80} is not a valid {_type_name(typ)}"
                    ) from exc
            raise

    def tables(self) -> dict[str, pa.Table]:
        self.flush()
        out = {}
        for name, cols in _STAGING.items():
            schema = pa.schema([pa.field(c, t) for c, t in cols.items()])
            out[name] = pa.concat_tables(self.batches[name]) if self.batches[name] else schema.empty_table()
        return out


# -- SQL ----------------------------------------------------------------------------------------

def _nz(col: str) -> str:
    return f"NULLIF({col}, '')"


_LATEST = "ORDER BY fetched_at DESC, tmdb_id DESC"

_SQL: dict[str, str] = {
    "tmdb_movie": f"""
        SELECT tmdb_id, {_nz('imdb_id')} AS imdb_id, {_nz('title')} AS title,
               {_nz('original_title')} AS original_title, {_nz('original_language')} AS original_language,
               {_nz('overview')} AS overview, {_nz('tagline')} AS tagline,
               TRY_CAST({_nz('release_date')} AS DATE) AS release_date,
               NULLIF(runtime, 0) AS runtime, NULLIF(budget, 0) AS budget, NULLIF(revenue, 0) AS revenue,
               popularity, vote_average, vote_count, {_nz('status')} AS status, adult, video, softcore,
               {_nz('homepage')} AS homepage, {_nz('poster_path')} AS poster_path,
               {_nz('backdrop_path')} AS backdrop_path, collection_id,
               list_filter(origin_country, lambda x: x <> '') AS origin_country, fetched_at
        FROM stg_movie ORDER BY tmdb_id""",
    "tmdb_person": f"""
        SELECT person_id, {_nz('name')} AS name, {_nz('original_name')} AS original_name, gender,
               {_nz('known_for_department')} AS known_for_department, popularity,
               {_nz('profile_path')} AS profile_path, adult, fetched_at
        FROM stg_person
        QUALIFY row_number() OVER (PARTITION BY person_id {_LATEST}, credit_id DESC) = 1
        ORDER BY person_id""",
    "tmdb_genre": f"""
        SELECT genre_id, {_nz('name')} AS name FROM stg_genre
        QUALIFY row_number() OVER (PARTITION BY genre_id {_LATEST}, position) = 1 ORDER BY genre_id""",
    "tmdb_keyword": f"""
        SELECT keyword_id, {_nz('name')} AS name FROM stg_keyword
        QUALIFY row_number() OVER (PARTITION BY keyword_id {_LATEST}, position) = 1 ORDER BY keyword_id""",
    "tmdb_company": f"""
        SELECT company_id, {_nz('name')} AS name, {_nz('origin_country')} AS origin_country,
               {_nz('logo_path')} AS logo_path FROM stg_company
        QUALIFY row_number() OVER (PARTITION BY company_id {_LATEST}, position) = 1 ORDER BY company_id""",
    "tmdb_country": f"""
        WITH named AS (
            SELECT iso_3166_1, {_nz('name')} AS name FROM stg_country
            QUALIFY row_number() OVER (PARTITION BY iso_3166_1 {_LATEST}, position) = 1),
        codes AS (
            SELECT iso_3166_1 FROM stg_country
            UNION SELECT unnest(origin_country) FROM stg_movie
            UNION SELECT origin_country FROM stg_company
            UNION SELECT iso_3166_1 FROM stg_release)
        SELECT c.iso_3166_1, n.name FROM codes c LEFT JOIN named n USING (iso_3166_1)
        WHERE c.iso_3166_1 IS NOT NULL AND c.iso_3166_1 <> '' ORDER BY c.iso_3166_1""",
    "tmdb_language": f"""
        WITH named AS (
            SELECT iso_639_1, {_nz('english_name')} AS english_name, {_nz('name')} AS name
            FROM stg_language
            QUALIFY row_number() OVER (PARTITION BY iso_639_1 {_LATEST}, position) = 1),
        codes AS (
            SELECT iso_639_1 FROM stg_language
            UNION SELECT original_language FROM stg_movie
            UNION SELECT iso_639_1 FROM stg_release)
        SELECT c.iso_639_1, n.english_name, n.name FROM codes c LEFT JOIN named n USING (iso_639_1)
        WHERE c.iso_639_1 IS NOT NULL AND c.iso_639_1 <> '' ORDER BY c.iso_639_1""",
    "tmdb_collection": f"""
        SELECT collection_id, {_nz('name')} AS name, {_nz('poster_path')} AS poster_path,
               {_nz('backdrop_path')} AS backdrop_path FROM stg_collection
        QUALIFY row_number() OVER (PARTITION BY collection_id {_LATEST}) = 1 ORDER BY collection_id""",
    "tmdb_cast": f"""
        SELECT credit_id, tmdb_id, person_id, {_nz('"character"')} AS "character", cast_order, cast_id
        FROM stg_cast
        QUALIFY row_number() OVER (PARTITION BY credit_id ORDER BY tmdb_id, cast_order, person_id) = 1
        ORDER BY tmdb_id, cast_order, credit_id""",
    "tmdb_crew": f"""
        SELECT credit_id, tmdb_id, person_id, {_nz('department')} AS department, {_nz('job')} AS job
        FROM stg_crew
        QUALIFY row_number() OVER (PARTITION BY credit_id ORDER BY tmdb_id, person_id, job) = 1
        ORDER BY tmdb_id, credit_id""",
    "tmdb_movie_genre": """
        SELECT tmdb_id, genre_id, min(position)::INTEGER AS position FROM stg_genre
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_keyword": """
        SELECT tmdb_id, keyword_id, min(position)::INTEGER AS position FROM stg_keyword
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_company": """
        SELECT tmdb_id, company_id, min(position)::INTEGER AS position FROM stg_company
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_country": """
        WITH origin AS (
            SELECT tmdb_id, unnest(origin_country) AS iso_3166_1,
                   (generate_subscripts(origin_country, 1) - 1) AS position FROM stg_movie),
        rows AS (
            SELECT tmdb_id, iso_3166_1, 'production' AS role, position FROM stg_country
            UNION ALL SELECT tmdb_id, iso_3166_1, 'origin' AS role, position FROM origin)
        SELECT tmdb_id, iso_3166_1, role, min(position)::INTEGER AS position FROM rows
        WHERE iso_3166_1 IS NOT NULL AND iso_3166_1 <> ''
        GROUP BY ALL ORDER BY tmdb_id, role DESC, position""",
    "tmdb_movie_language": """
        SELECT tmdb_id, iso_639_1, min(position)::INTEGER AS position FROM stg_language
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_release_date": f"""
        SELECT tmdb_id, position, {_nz('iso_3166_1')} AS iso_3166_1,
               TRY_CAST({_nz('release_date')} AS TIMESTAMPTZ)::TIMESTAMP AS release_date, type,
               {_nz('certification')} AS certification, {_nz('note')} AS note,
               {_nz('iso_639_1')} AS iso_639_1, descriptors
        FROM stg_release ORDER BY tmdb_id, position""",
}

_MOVIE_TMDB_SQL = """
    WITH l AS (SELECT movie_id, imdb_id, tmdb_id AS links_tmdb FROM stg_links),
    m AS (
        SELECT l.movie_id, l.imdb_id, coalesce(l.links_tmdb, r.tmdb_id) AS tmdb_id,
               CASE WHEN l.links_tmdb IS NOT NULL THEN 'links'
                    WHEN r.tmdb_id IS NOT NULL THEN 'find' END AS source
        FROM l LEFT JOIN stg_resolved r USING (movie_id))
    SELECT m.movie_id, m.imdb_id, m.tmdb_id, m.source, o.outcome AS landing_outcome,
           (t.tmdb_id IS NOT NULL) AS has_payload,
           (m.tmdb_id IS NOT NULL AND count(*) OVER (PARTITION BY m.tmdb_id) > 1) AS tmdb_id_shared
    FROM m
    LEFT JOIN stg_outcome o ON o.tmdb_id = m.tmdb_id
    LEFT JOIN tmdb_movie t ON t.tmdb_id = m.tmdb_id
    ORDER BY m.movie_id"""


# -- builder ------------------------------------------------------------------------------------


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


_COVERAGE_SQL = """
    SELECT count(*) AS movies,
           count(mt.tmdb_id) AS with_tmdb_id,
           count(*) - count(mt.tmdb_id) AS without_tmdb_id,
           count(*) FILTER (WHERE source = 'links') AS tmdb_id_from_links,
           count(*) FILTER (WHERE source = 'find') AS tmdb_id_from_find,
           count(*) FILTER (WHERE has_payload) AS with_payload,
           count(*) FILTER (WHERE t.overview IS NOT NULL) AS with_overview,
           count(*) FILTER (WHERE landing_outcome = 'not_found') AS not_found,
           count(*) FILTER (WHERE landing_outcome = 'failed') AS failed,
           count(*) FILTER (WHERE mt.tmdb_id IS NOT NULL AND landing_outcome IS NULL) AS not_fetched,
           count(*) FILTER (WHERE tmdb_id_shared) AS movies_with_shared_tmdb_id,
           count(DISTINCT mt.tmdb_id) FILTER (WHERE tmdb_id_shared) AS shared_tmdb_ids
    FROM movie_tmdb mt LEFT JOIN tmdb_movie t USING (tmdb_id)"""


def _coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    cur = con.execute(_COVERAGE_SQL)
    names = [d[0] for d in cur.description]
    stats = dict(zip(names, one_row(cur), strict=True))
    movies = stats["movies"]
    stats["with_payload_share"] = stats["with_payload"] / movies if movies else 0.0
    stats["with_overview_share"] = stats["with_overview"] / movies if movies else 0.0
    return stats


# -- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    description: str
    severity: Literal["error", "warn"] = "error"
    metadata: dict[str, Any] = field(default_factory=dict)


def check_star_schema(out_dir: str | os.PathLike[str]) -> list[CheckResult]:
    """Verify the star tables under `out_dir` against STAR_TABLES.

    One result per table schema (`schema:<t>`), primary key (`pk:<t>`: unique, not NULL), foreign
    key (`fk:<t>.<cols>`: every non-NULL reference resolves), plus `movie_tmdb:consistency`
    (has_payload / tmdb_id_shared agree with the data) and `coverage` (always passes; stats).
    """
    out = Path(out_dir)
    results: list[CheckResult] = []
    present: set[str] = set()
    con = connect()
    try:
        for spec in STAR_TABLES.values():
            path = out / spec.file_name
            name = f"schema:{spec.name}"
            if not path.exists():
                results.append(CheckResult(name, False, f"{path} is missing"))
                continue
            schema = pq.read_schema(path)
            got = [(f.name, f.type) for f in schema]
            want = [(c.name, c.type) for c in spec.columns]
            ok = got == want
            results.append(CheckResult(
                name, ok, "columns and types match STAR_TABLES" if ok else f"{path}: schema differs",
                metadata={} if ok else {"expected": [f"{n} {t}" for n, t in want],
                                        "actual": [f"{n} {t}" for n, t in got]},
            ))
            con.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM read_parquet({sql_str(path)})")
            present.add(spec.name)

        for spec in STAR_TABLES.values():
            if spec.name not in present:
                continue
            keys = ", ".join(f'"{k}"' for k in spec.primary_key)
            not_null = " OR ".join(f'"{k}" IS NULL' for k in spec.primary_key)
            rows, dup, nulls = one_row(con.execute(
                f"SELECT count(*), count(*) - count(DISTINCT row({keys})), count(*) FILTER (WHERE {not_null}) "
                f"FROM {spec.name}"
            ))
            sample = con.execute(
                f"SELECT {keys} FROM {spec.name} GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 5"
            ).fetchall()
            results.append(CheckResult(
                f"pk:{spec.name}", dup == 0 and nulls == 0,
                f"primary key ({', '.join(spec.primary_key)}) unique and not NULL",
                metadata={"rows": rows, "duplicates": dup, "nulls": nulls,
                          "duplicate_keys_sample": [list(s) for s in sample]},
            ))
            for fk in spec.foreign_keys:
                name = f"fk:{spec.name}.{','.join(fk.columns)}->{fk.ref_table}"
                if fk.ref_table not in present:
                    results.append(CheckResult(name, False, f"{fk.ref_table} is missing"))
                    continue
                cond = " AND ".join(f'c."{c}" IS NOT NULL' for c in fk.columns)
                if fk.where:
                    cond += f" AND ({fk.where})"
                join = " AND ".join(f'c."{c}" = p."{r}"' for c, r in zip(fk.columns, fk.ref_columns, strict=True))
                cols = ", ".join(f'c."{c}"' for c in fk.columns)
                orphans = con.execute(
                    f"SELECT {cols} FROM {spec.name} c ANTI JOIN {fk.ref_table} p ON {join} "
                    f"WHERE {cond} ORDER BY ALL"
                ).fetchall()
                results.append(CheckResult(
                    name, not orphans,
                    f"every {spec.name}.({', '.join(fk.columns)}) exists in {fk.ref_table}",
                    metadata={"orphans": len(orphans), "orphans_sample": [list(o) for o in orphans[:5]]},
                ))

        if {"movie_tmdb", "tmdb_movie"} <= present:
            bad_payload, bad_shared = one_row(con.execute("""
                SELECT count(*) FILTER (WHERE has_payload <> (t.tmdb_id IS NOT NULL)),
                       count(*) FILTER (WHERE tmdb_id_shared <> (mt.tmdb_id IS NOT NULL AND n > 1))
                FROM (SELECT *, count(*) OVER (PARTITION BY tmdb_id) AS n FROM movie_tmdb) mt
                LEFT JOIN tmdb_movie t ON t.tmdb_id = mt.tmdb_id"""))
            results.append(CheckResult(
                "movie_tmdb:consistency", bad_payload == 0 and bad_shared == 0,
                "has_payload and tmdb_id_shared agree with tmdb_movie and the tmdb_id counts",
                metadata={"wrong_has_payload": bad_payload, "wrong_tmdb_id_shared": bad_shared},
            ))
            results.append(CheckResult(
                "coverage", True, "share of MovieLens movies with TMDb data", severity="warn",
                metadata=_coverage(con),
            ))
    finally:
        con.close()
    return results


def failed_checks(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def coverage_json(report: Mapping[str, Any]) -> str:
    """The coverage block of a build report as stable JSON (for asset metadata / logs)."""
    return json.dumps(report.get("coverage", {}), sort_keys=True)
