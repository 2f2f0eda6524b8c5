"""A faithful local TMDb v3 server (aiohttp.web) on 127.0.0.1 for tests and benchmarks.

    movies = {550: {...details + credits/keywords/release_dates...}}
    with FakeTMDb(movies=movies, token="eyJ...", api_key="0123...") as srv:   # own loop, own thread
        TMDbConfig(base_url=srv.base_url, read_access_token="eyJ...")
        srv.successful_fetches(550), srv.max_in_window(1.0)

    async with FakeTMDb(movies=movies, token=...) as srv:                      # inside the running loop
        ...

Modelled after /work/shared/reference/tmdb-api.md (section 8 checklist):

* Auth: ``Authorization: Bearer <token>`` or ``?api_key=<key>``; anything else -> 401 with the exact
  status_code 7 envelope and ``Cache-Control: public, max-age=300`` (a v3 key sent as Bearer fails).
* ``GET /3/movie/{id}``: top-level details plus only the requested ``append_to_response`` blocks
  (unknown names ignored, more than 20 -> 400 / 27), 404 / 34 for unknown ids (no Cache-Control, no
  ETag). Success headers: ``application/json;charset=utf-8``, ``Cache-Control: public, max-age=N``,
  weak ``ETag``; no ``X-RateLimit-*``.
* ``GET /3/movie/changes``: inclusive dates, default last 24 h, 100 ids per page, ``end - start > 14``
  days -> 422 / 20, bad date -> 400 / 23, bad page -> 400 / 22, page > 500 -> 422 ``{"errors": [...]}``.
* ``GET /3/find/{id}?external_source=imdb_id``: five result arrays, a miss is 200 with empty arrays,
  a missing/unknown ``external_source`` is an error.
* A token bucket (``rate_limit_per_s`` / ``rate_burst``) answering 429 / 25 with ``Retry-After: N``,
  ``Retry-After: 0`` or no Retry-After (``retry_after=N | 0 | None``) and CloudFront-style headers.
* Faults, chosen per request from (1) a global injection queue (:meth:`FakeTMDb.inject`), (2) a
  per-id script (``script={id: ["503", "ok", ...]}``, indexed by the id's request number), (3) a
  probability (``fault_rate`` over ``fault_mix``) that is deterministic for a given ``seed``, id and
  request number, whatever the arrival order. Kinds: ``"500"/"502"/"503"/"504"`` (JSON envelope),
  ``"502html"`` (CloudFront HTML page), ``"429"``, ``"reset"`` (abort the TCP connection), ``"malformed"``
  (HTTP 200, truncated JSON), ``"slow"`` (sleep ``slow_s`` first, then answer normally), any other
  3-digit status (envelope), ``"ok"`` (no fault).
* ``latency_s`` (seconds, or a ``(low, high)`` uniform range) is added to every non-429 answer.
* Every request is recorded (:class:`RequestRecord`: arrival/end time on ``time.monotonic``, path,
  id, status, fault, auth style, whether the body was delivered) for rate and count assertions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from movielens_assets_tests.servers.aio_thread import ThreadedAioServer

# status_code -> (HTTP status, status_message), verbatim from the TMDb errors table / live captures.
ERRORS: dict[int, tuple[int, str]] = {
    3: (401, "Authentication failed: You do not have permissions to access the service."),
    5: (422, "Invalid parameters: Your request parameters are incorrect."),
    6: (404, "Invalid id: The pre-requisite id is invalid or not found."),
    7: (401, "Invalid API key: You must be granted a valid key."),
    9: (503, "Service offline: This service is temporarily offline, try again later."),
    10: (401, "Suspended API key: Access to your account has been suspended, contact TMDB."),
    11: (500, "Internal error: Something went wrong, contact TMDB."),
    20: (422, "Invalid date range: Should be a range no longer than 14 days."),
    22: (400, "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer."),
    23: (400, "Invalid date: Format needs to be YYYY-MM-DD."),
    24: (504, "Your request to the backend server timed out. Try again."),
    25: (429, "Your request count (#) is over the allowed limit of (40)."),
    27: (400, "Too many append to response objects: The maximum number of remote calls is 20."),
    34: (404, "The resource you requested could not be found."),
    43: (502, "Couldn't connect to the backend server."),
    46: (503, "The API is undergoing maintenance. Try again later."),
}
# TMDb code used when a fault asks for a bare HTTP status.
STATUS_CODE_FOR_HTTP = {400: 22, 401: 7, 403: 3, 404: 34, 422: 5, 429: 25, 500: 11, 502: 43, 503: 9, 504: 24}

# Namespaces that /movie/{id} accepts in append_to_response. A stored payload key with one of these
# names is an appendable block; every other key is a top-level detail field.
APPENDABLE = frozenset(
    {
        "account_states", "alternative_titles", "changes", "credits", "external_ids", "images",
        "keywords", "lists", "recommendations", "release_dates", "reviews", "similar",
        "translations", "videos", "watch/providers",
    }
)
EXTERNAL_SOURCES = frozenset(
    {"imdb_id", "facebook_id", "instagram_id", "tvdb_id", "tiktok_id", "twitter_id", "wikidata_id", "youtube_id"}
)
FIND_SUMMARY_FIELDS = (
    "adult", "backdrop_path", "id", "title", "original_language", "original_title", "overview",
    "poster_path", "popularity", "release_date", "video", "vote_average", "vote_count",
)
JSON_CT = "application/json;charset=utf-8"
CHANGES_PAGE_SIZE = 100
MAX_APPEND = 20
MAX_PAGE = 500
HTML_502 = (
    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">\n<HTML><HEAD><TITLE>ERROR: The request "
    "could not be satisfied</TITLE></HEAD><BODY><H1>502 ERROR</H1><H2>The request could not be satisfied.</H2>"
    "<HR noshade size=\"1px\">Generated by cloudfront (CloudFront)</BODY></HTML>"
)


@dataclass
class RequestRecord:
    seq: int  # 1-based arrival order
    t: float  # arrival, time.monotonic()
    method: str
    path: str
    query: dict[str, str]  # api_key masked as "***"
    auth: str  # "bearer" | "api_key" | "none" (what was sent, valid or not)
    tmdb_id: int | None = None
    status: int = 0  # HTTP status written (0: connection reset / client went away before an answer)
    fault: str | None = None
    delivered: bool = False  # the whole response was handed to the transport
    t_end: float | None = None

    @property
    def successful(self) -> bool:
        """A usable 200 reached the client: no fault (a merely slow answer counts), not interrupted."""
        return self.status == 200 and self.fault in (None, "slow") and self.delivered


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, max(1.0, burst)
        self.tokens, self.t = self.burst, time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


NAMED_FAULTS = frozenset({"ok", "slow", "reset", "malformed", "502html", "429"})


def _check_faults(kinds: Iterable[str]) -> list[str]:
    kinds = list(kinds)
    for kind in kinds:
        if kind not in NAMED_FAULTS and not (len(kind) == 3 and kind.isdigit() and 400 <= int(kind) <= 599):
            raise ValueError(f"unknown fault kind {kind!r}")
    return kinds


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class FakeTMDb(ThreadedAioServer):
    """A local TMDb v3 (see module docstring). ``base_url`` ends in ``/3`` like the real one."""

    thread_name = "fake-tmdb"

    def __init__(
        self,
        movies: Mapping[int, Mapping[str, Any]] | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        changes: Mapping[int, date | str | Iterable[date | str]] | None = None,
        rate_limit_per_s: float | None = None,
        rate_burst: float | None = None,
        retry_after: int | None = 1,
        latency_s: float | tuple[float, float] = 0.0,
        fault_rate: float = 0.0,
        fault_mix: Sequence[str] = ("502", "503", "504", "reset", "malformed", "slow"),
        slow_s: float = 1.0,
        script: Mapping[int, Sequence[str]] | None = None,
        seed: int = 0,
        today: date | None = None,
        cache_max_age: int = 6991,
    ) -> None:
        if token is None and api_key is None:
            raise ValueError("FakeTMDb needs a token and/or an api_key to accept")
        self.movies: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in (movies or {}).items()}
        self.token, self.api_key = token, api_key
        self.changes: dict[int, list[date]] = {}
        for tmdb_id, when in (changes or {}).items():
            dates = [when] if isinstance(when, (date, str)) else list(when)
            self.changes[int(tmdb_id)] = sorted(_as_date(d) for d in dates)
        self.retry_after = retry_after
        self.latency_s = latency_s
        self.fault_rate, self.fault_mix = fault_rate, tuple(_check_faults(fault_mix))
        self.slow_s = slow_s
        self.script: dict[int, list[str]] = {int(k): _check_faults(v) for k, v in (script or {}).items()}
        self.seed = seed
        self.today = today
        self.cache_max_age = cache_max_age
        self.records: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._bucket: _Bucket | None = None
        self.set_rate_limit(rate_limit_per_s, rate_burst)
        self._injected: list[str] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._per_key: Counter[str] = Counter()
        self._imdb_index = {str(m.get("imdb_id")): k for k, m in self.movies.items() if m.get("imdb_id")}
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    # -- configuration at run time ----------------------------------------------------------------

    def set_rate_limit(self, rate_per_s: float | None, burst: float | None = None) -> None:
        """Enable (or, with None, disable) the 429 token bucket; burst defaults to one second's worth."""
        self._bucket = None if rate_per_s is None else _Bucket(rate_per_s, burst if burst is not None else rate_per_s)

    def inject(self, *kinds: str) -> None:
        """The next ``len(kinds)`` requests (any path, after rate limit and auth) get these faults."""
        checked = _check_faults(kinds)
        with self._lock:
            self._injected.extend(checked)

    def reset_log(self) -> None:
        with self._lock:
            self.records.clear()
            self.max_in_flight = self.in_flight

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeTMDb is not started")
        return f"http://127.0.0.1:{self.port}/3"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/3/movie/changes", self._changes)
        app.router.add_get(r"/3/movie/{movie_id:\d+}", self._movie)
        app.router.add_get("/3/find/{external_id}", self._find)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def __aenter__(self) -> FakeTMDb:
        await self._astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._astop()


    # -- queries for tests ----------------------------------------------------------------------------

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.records)

    def movie_records(self, tmdb_id: int | None = None) -> list[RequestRecord]:
        return [
            r for r in self.snapshot()
            if r.path.startswith("/3/movie/") and r.tmdb_id is not None and (tmdb_id is None or r.tmdb_id == tmdb_id)
        ]

    def requests_for(self, tmdb_id: int) -> int:
        """All /movie/{id} requests that reached the server for this id (faults and 429s included)."""
        return len(self.movie_records(tmdb_id))

    def successful_fetches(self, tmdb_id: int | None = None) -> Counter[int] | int:
        """Usable 200s delivered per id (or for one id)."""
        counts = Counter(r.tmdb_id for r in self.movie_records() if r.successful)
        return counts if tmdb_id is None else counts.get(tmdb_id, 0)

    def status_counts(self) -> Counter[int]:
        return Counter(r.status for r in self.snapshot())

    def max_in_window(self, window_s: float = 1.0, *, records: Sequence[RequestRecord] | None = None) -> int:
        """Most request arrivals inside any half-open window ``[t, t + window_s)``."""
        times = sorted(r.t for r in (records if records is not None else self.snapshot()))
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # -- request plumbing ---------------------------------------------------------------------------

    def _rand(self, *key: object) -> random.Random:
        digest = hashlib.blake2b(repr((self.seed, *key)).encode(), digest_size=8).digest()
        return random.Random(int.from_bytes(digest, "big"))

    def _auth(self, request: web.Request) -> tuple[str, bool]:
        header = request.headers.get("Authorization", "")
        key = request.query.get("api_key")
        style = "bearer" if header else ("api_key" if key is not None else "none")
        ok = False
        if header.lower().startswith("bearer ") and self.token is not None:
            ok = header[7:].strip() == self.token
        if not ok and key is not None and self.api_key is not None:
            ok = key == self.api_key
        return style, ok

    def _latency(self, rng: random.Random) -> float:
        if isinstance(self.latency_s, tuple):
            low, high = self.latency_s
            return rng.uniform(low, high)
        return float(self.latency_s)

    def _pick_fault(self, key: str, n: int, rng: random.Random, tmdb_id: int | None) -> str | None:
        with self._lock:
            if self._injected:
                kind = self._injected.pop(0)
                return None if kind == "ok" else kind
        if tmdb_id is not None and tmdb_id in self.script:
            steps = self.script[tmdb_id]
            if n < len(steps):
                return None if steps[n] == "ok" else steps[n]
        if self.fault_rate > 0 and self.fault_mix and rng.random() < self.fault_rate:
            return rng.choice(self.fault_mix)
        return None

    @staticmethod
    def envelope(code: int, *, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
        status, message = ERRORS.get(code, (http_status or 500, "Unknown error."))
        return (http_status or status), {"success": False, "status_code": code, "status_message": message}

    async def _send(
        self,
        request: web.Request,
        record: RequestRecord,
        status: int,
        body: bytes | str | dict[str, Any] | list[Any],
        headers: Mapping[str, str] | None = None,
        content_type: str = JSON_CT,
    ) -> web.StreamResponse:
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        data = body.encode() if isinstance(body, str) else body
        response = web.StreamResponse(status=status, headers={"Server": "openresty", **(headers or {})})
        response.headers["Content-Type"] = content_type
        response.content_length = len(data)
        record.status = status
        try:
            await response.prepare(request)
            await response.write(data)
            await response.write_eof()
            record.delivered = True
        except (ConnectionError, RuntimeError):  # the client went away mid-answer
            record.delivered = False
        return response

    async def _error(self, request: web.Request, record: RequestRecord, code: int, *, http_status: int | None = None,
                     headers: Mapping[str, str] | None = None) -> web.StreamResponse:
        status, body = self.envelope(code, http_status=http_status)
        if code == 7:
            # The live 401 capture orders the keys status_code, status_message, success.
            body = {"status_code": 7, "status_message": ERRORS[7][1], "success": False}
            headers = {"Cache-Control": "public, max-age=300", **(headers or {})}
        return await self._send(request, record, status, body, headers)

    async def _handle(self, request: web.Request, tmdb_id: int | None, respond) -> web.StreamResponse:
        arrival = time.monotonic()
        query = {k: ("***" if k == "api_key" else v) for k, v in request.query.items()}
        style, auth_ok = self._auth(request)
        with self._lock:
            self._seq += 1
            record = RequestRecord(self._seq, arrival, request.method, request.path, query, style, tmdb_id)
            self.records.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            key = f"id:{tmdb_id}" if tmdb_id is not None else f"seq:{request.path}"
            n = self._per_key[key]
            self._per_key[key] += 1
        try:
            # 1. CDN rate limit (answered at the edge: no backend latency).
            if self._bucket is not None and not self._bucket.take(arrival):
                return await self._rate_limited(request, record)
            # 2. Authentication.
            if not auth_ok:
                return await self._error(request, record, 7)
            # 3. Fault injection and backend latency.
            rng = self._rand(key, n)
            fault = self._pick_fault(key, n, rng, tmdb_id)
            record.fault = fault
            delay = self._latency(rng) + (self.slow_s if fault == "slow" else 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            if fault == "reset":
                record.status = 0
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing more to write; the connection is gone
            # "slow" falls through: a late but otherwise normal answer
            elif fault == "malformed":
                truncated = '{"adult":false,"id":' + str(tmdb_id or 0) + ',"title":"Tru'
                return await self._send(request, record, 200, truncated)
            elif fault == "502html":
                return await self._send(request, record, 502, HTML_502, {"X-Cache": "Error from cloudfront"},
                                        content_type="text/html")
            elif fault == "429":
                return await self._rate_limited(request, record)
            elif fault is not None and fault != "slow":
                http_status = int(fault)
                code = STATUS_CODE_FOR_HTTP.get(http_status, 0)
                return await self._error(request, record, code, http_status=http_status)
            return await respond(request, record)
        except asyncio.CancelledError:
            record.delivered = False
            raise
        finally:
            record.t_end = time.monotonic()
            with self._lock:
                self.in_flight -= 1

    async def _rate_limited(self, request: web.Request, record: RequestRecord) -> web.StreamResponse:
        headers = {"X-Cache": "Error from cloudfront", "Via": "1.1 fake.cloudfront.net (CloudFront)"}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return await self._error(request, record, 25, headers=headers)

    # -- endpoints ------------------------------------------------------------------------------------

    def _ok_headers(self, data: bytes) -> dict[str, str]:
        return {
            "Cache-Control": f"public, max-age={self.cache_max_age}",
            "ETag": 'W/"' + hashlib.md5(data).hexdigest() + '"',
            "Vary": "accept-encoding, Origin",
            "X-Cache": "Miss from cloudfront",
        }

    async def _json_ok(self, request: web.Request, record: RequestRecord, body: Any) -> web.StreamResponse:
        data = json.dumps(body, separators=(",", ":")).encode()
        return await self._send(request, record, 200, data, self._ok_headers(data))

    async def _movie(self, request: web.Request) -> web.StreamResponse:
        tmdb_id = int(request.match_info["movie_id"])

        async def respond(request: web.Request, record: RequestRecord) -> web.StreamResponse:
            stored = self.movies.get(tmdb_id)
            if stored is None:
                return await self._error(request, record, 34)
            wanted = [n.strip() for n in request.query.get("append_to_response", "").split(",") if n.strip()]
            if len(wanted) > MAX_APPEND:
                return await self._error(request, record, 27)
            body = {k: v for k, v in stored.items() if k not in APPENDABLE}
            for name in wanted:
                if name in APPENDABLE and name in stored:
                    block = stored[name]
                    # appended blocks carry no "id" of their own
                    body[name] = {k: v for k, v in block.items() if k != "id"} if isinstance(block, dict) else block
            return await self._json_ok(request, record, body)

        return await self._handle(request, tmdb_id, respond)

    def _today(self) -> date:
        return self.today or datetime.now(UTC).date()

    async def _changes(self, request: web.Request) -> web.StreamResponse:
        async def respond(request: web.Request, record: RequestRecord) -> web.StreamResponse:
            q = request.query
            try:
                end = date.fromisoformat(q["end_date"]) if "end_date" in q else self._today()
                start = date.fromisoformat(q["start_date"]) if "start_date" in q else end - timedelta(days=1)
            except ValueError:
                return await self._error(request, record, 23)
            if (end - start).days > 14:
                return await self._error(request, record, 20)
            try:
                page = int(q.get("page", "1"))
            except ValueError:
                return await self._error(request, record, 22)
            if page < 1:
                return await self._error(request, record, 22)
            if page > MAX_PAGE:
                return await self._send(request, record, 422, {"errors": ["page must be less than or equal to 500"]})
            ids = sorted(i for i, dates in self.changes.items() if any(start <= d <= end for d in dates))
            total_pages = max(1, math.ceil(len(ids) / CHANGES_PAGE_SIZE))
            chunk = ids[(page - 1) * CHANGES_PAGE_SIZE: page * CHANGES_PAGE_SIZE]
            # adult is null for ids this server has no payload for (the OAS example has nulls too)
            results = [{"id": i, "adult": self.movies[i].get("adult", False) if i in self.movies else None}
                       for i in chunk]
            body = {"results": results, "page": page, "total_pages": total_pages, "total_results": len(ids)}
            return await self._json_ok(request, record, body)

        return await self._handle(request, None, respond)

    async def _find(self, request: web.Request) -> web.StreamResponse:
        external_id = request.match_info["external_id"]

        async def respond(request: web.Request, record: RequestRecord) -> web.StreamResponse:
            source = request.query.get("external_source")
            if source not in EXTERNAL_SOURCES:
                return await self._error(request, record, 5)  # [INF] the exact body is not documented
            body: dict[str, list[Any]] = {
                "movie_results": [], "person_results": [], "tv_results": [], "tv_episode_results": [],
                "tv_season_results": [],
            }
            if source == "imdb_id" and external_id in self._imdb_index:
                movie = self.movies[self._imdb_index[external_id]]
                summary = {k: movie.get(k) for k in FIND_SUMMARY_FIELDS if k in movie}
                summary["media_type"] = "movie"
                summary["genre_ids"] = [g["id"] for g in movie.get("genres", []) if isinstance(g, dict)]
                body["movie_results"].append(summary)
            return await self._json_ok(request, record, body)

        return await self._handle(request, None, respond)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        async def respond(request: web.Request, record: RequestRecord) -> web.StreamResponse:
            return await self._error(request, record, 34)

        return await self._handle(request, None, respond)


# --------------------------------------------------------------------------------------------------
# Fixture payloads
# --------------------------------------------------------------------------------------------------


def make_movie(tmdb_id: int, *, rng: random.Random | None = None) -> dict[str, Any]:
    """A realistic details + credits/keywords/release_dates payload (shape of the reference §2.3)."""
    rng = rng or random.Random(tmdb_id)
    year = 1950 + tmdb_id % 70
    n_cast, n_crew = 3 + tmdb_id % 5, 2 + tmdb_id % 4
    person = lambda pid, name: {  # noqa: E731
        "adult": False, "gender": pid % 4, "id": pid, "known_for_department": "Acting", "name": name,
        "original_name": name, "popularity": round(rng.uniform(0.5, 50), 3),
        "profile_path": None if pid % 7 == 0 else f"/p{pid}.jpg",
    }
    return {
        "adult": False,
        "backdrop_path": f"/b{tmdb_id}.jpg",
        "belongs_to_collection": None,
        "budget": rng.choice([0, 1_000_000 * rng.randint(1, 200)]),
        "genres": [{"id": 18, "name": "Drama"}] + ([{"id": 35, "name": "Comedy"}] if tmdb_id % 2 else []),
        "homepage": "",
        "id": tmdb_id,
        "imdb_id": f"tt{tmdb_id:07d}",
        "origin_country": ["US"],
        "original_language": "en",
        "original_title": f"Movie {tmdb_id}",
        "overview": f"Overview of movie {tmdb_id}.",
        "popularity": round(rng.uniform(0.1, 100), 3),
        "poster_path": f"/p{tmdb_id}.jpg",
        "production_companies": [{"id": 508, "logo_path": None, "name": "Regency Enterprises", "origin_country": "US"}],
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "release_date": f"{year}-0{1 + tmdb_id % 9}-1{tmdb_id % 10}",
        "revenue": 0,
        "runtime": 80 + tmdb_id % 70,
        "spoken_languages": [{"english_name": "English", "iso_639_1": "en", "name": "English"}],
        "status": "Released",
        "tagline": "",
        "title": f"Movie {tmdb_id}",
        "video": False,
        "vote_average": round(rng.uniform(1, 9), 3),
        "vote_count": rng.randint(0, 30000),
        "credits": {
            "id": tmdb_id,  # stand-alone shape; stripped when appended
            "cast": [
                {**person(10_000 + tmdb_id * 10 + i, f"Actor {tmdb_id}-{i}"), "cast_id": i + 1,
                 "character": f"Role {i}", "credit_id": f"{tmdb_id:012x}{i:012x}", "order": i}
                for i in range(n_cast)
            ],
            "crew": [
                {**person(20_000 + tmdb_id * 10 + i, f"Crew {tmdb_id}-{i}"), "known_for_department": "Directing",
                 "credit_id": f"{tmdb_id:012x}{100 + i:012x}", "department": "Directing", "job": "Director"}
                for i in range(n_crew)
            ],
        },
        "keywords": {"id": tmdb_id, "keywords": [{"id": 818, "name": "based on novel or book"}]},
        "release_dates": {
            "id": tmdb_id,
            "results": [{"iso_3166_1": "US", "release_dates": [
                {"certification": "R", "descriptors": [], "iso_639_1": "", "note": "",
                 "release_date": f"{year}-10-15T00:00:00.000Z", "type": 3}]}],
        },
    }


def make_movies(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    return {int(i): make_movie(int(i)) for i in ids}


__all__ = ["ERRORS", "FakeTMDb", "RequestRecord", "make_movie", "make_movies"]

