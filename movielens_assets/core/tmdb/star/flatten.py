"""Payload flattening: TMDb JSON payloads -> staging column buffers -> Arrow tables (strictly typed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.star.schema import BOOL, F64, I32, I64, LIST_STR, STR, TS, _type_name

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
