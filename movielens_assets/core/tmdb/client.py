"""Async TMDb v3 client (aiohttp) for the enrichment crawl. No Dagster imports.

    config = TMDbConfig(read_access_token=token)
    async with TMDbClient(config, log=print) as client:
        stats = await client.fetch_many(tmdb_ids, on_result=landing_zone.append)

Behaviour (see /work/shared/reference/tmdb-api.md, sections 1 and 6):

* Auth: ``Authorization: Bearer <read access token>`` when a token is configured, else the v3
  ``api_key`` query parameter. Secrets never reach logs, exception messages, ``FetchResult.error``
  or ``repr``: every text that leaves this module goes through :func:`scrub`.
* One shared, strictly paced limiter (:class:`RateLimiter`) for all workers: consecutive request
  *starts* are at least ``1 / rate`` seconds apart, so no 1-second window ever holds more than
  ``rate_limit_per_s`` request starts (no burst allowance at all).
* HTTP 429: the limiter is paused for everybody until ``now + Retry-After`` (``0`` honoured as
  "no pause"; ``default_retry_after_s`` when the header is absent) and the pacing rate is halved,
  then recovers by +25 % per clean second. 429s have their own, generous retry bound
  (``max_rate_limited_attempts``).
* 5xx, timeouts, connection errors and malformed JSON in a 200 are retried with exponential
  backoff + full jitter, at most ``max_attempts`` attempts in all.
* 404 -> ``FetchResult(status=404)``; other 4xx -> ``FetchResult(status)``; neither is retried.
* 401 -> :class:`TMDbAuthError` at once; :meth:`TMDbClient.fetch_many` cancels its workers and
  re-raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import json
import math
import random
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp

from movielens_assets.core.tmdb.records import FetchResult

__all__ = [
    "CHANGES_WINDOW_DAYS",
    "CrawlStats",
    "RateLimiter",
    "TMDbAuthError",
    "TMDbClient",
    "TMDbConfig",
    "TMDbError",
    "TMDbRequestError",
    "iter_change_windows",
    "normalize_imdb_id",
    "scrub",
]

#: Days covered (inclusive) by one /movie/changes call. TMDb rejects ``end - start > 14`` days with
#: 422 / status_code 20; 14 inclusive days (end - start = 13) stays one day inside the cap.
CHANGES_WINDOW_DAYS = 14
#: Largest Retry-After we honour literally (a broken header must not stall a run for hours).
MAX_RETRY_AFTER_S = 600.0
#: TMDb serves at most this many pages of a paged list.
MAX_PAGES = 1000

_SPIN_S = 0.0015  # final stretch before a limiter slot spent yielding instead of sleeping
_USER_AGENT = "movielens-rec-tmdb/0.1 (+aiohttp)"


# --------------------------------------------------------------------------------------------
# Configuration, errors, statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TMDbConfig:
    """Connection and politeness settings. Secrets are excluded from ``repr``."""

    base_url: str = "https://api.themoviedb.org/3"
    read_access_token: str | None = field(default=None, repr=False)  # Authorization: Bearer (preferred)
    api_key: str | None = field(default=None, repr=False)  # else the api_key query parameter
    language: str = "en-US"
    append_to_response: tuple[str, ...] = ("credits", "keywords", "release_dates")
    max_connections: int = 20
    rate_limit_per_s: float = 35.0
    max_attempts: int = 6
    timeout_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    default_retry_after_s: float = 2.0  # used on a 429 without Retry-After
    max_rate_limited_attempts: int = 30  # 429s per request before giving up (generous on purpose)
    min_rate_fraction: float = 0.1  # adaptive slow-down never goes below this share of the rate
    # Headroom for network jitter: request starts are spaced (1 + this) / floor(rate) seconds apart,
    # so the *server* never counts more than rate_limit_per_s in any 1 s window while the one-way
    # delay varies by less than this many seconds (costs this fraction of throughput: 2 % by default).
    jitter_allowance_s: float = 0.02

    def __post_init__(self) -> None:
        if self.rate_limit_per_s <= 0:
            raise ValueError("rate_limit_per_s must be > 0")
        if self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if self.max_attempts < 1 or self.max_rate_limited_attempts < 1:
            raise ValueError("max_attempts and max_rate_limited_attempts must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if not 0 < self.min_rate_fraction <= 1:
            raise ValueError("min_rate_fraction must be in (0, 1]")
        if not 0 <= self.jitter_allowance_s < 1:
            raise ValueError("jitter_allowance_s must be in [0, 1)")
        if len(self.append_to_response) > 20:
            raise ValueError("TMDb accepts at most 20 append_to_response items")
        if isinstance(self.append_to_response, str):
            raise TypeError("append_to_response must be a tuple of names, not a string")

    @property
    def auth_style(self) -> str:
        """``"bearer"``, ``"api_key"`` or ``"none"`` (never the secret itself)."""
        if self.read_access_token:
            return "bearer"
        if self.api_key:
            return "api_key"
        return "none"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.read_access_token, self.api_key) if s)


class TMDbError(RuntimeError):
    """Base class of the client's errors. Messages never contain credentials."""


class TMDbAuthError(TMDbError):
    """HTTP 401: the credentials were rejected. Fatal for the whole run."""


class TMDbRequestError(TMDbError):
    """A non-movie request (changes feed, find) failed for good."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CrawlStats:
    """Live counters of a client (reset by each :meth:`TMDbClient.fetch_many`).

    ``ok`` / ``not_found`` / ``failed`` count movie outcomes; ``requests`` counts HTTP attempts of
    any kind (including ones that got no response); ``retries`` counts re-attempts (429s
    included); ``rate_limited`` counts 429 responses; ``duplicates`` counts ids skipped by
    ``fetch_many`` because they were already requested in the same call.
    """

    total: int | None = None
    ok: int = 0
    not_found: int = 0
    failed: int = 0
    retries: int = 0
    requests: int = 0
    rate_limited: int = 0
    duplicates: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def done(self) -> int:
        return self.ok + self.not_found + self.failed

    @property
    def elapsed(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return max(0.0, end - self.started_at)

    @property
    def rate(self) -> float:
        """Average HTTP requests per second since the start."""
        elapsed = self.elapsed
        return self.requests / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "ok": self.ok,
            "not_found": self.not_found,
            "failed": self.failed,
            "retries": self.retries,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "duplicates": self.duplicates,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 2),
        }


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_SECRET_PARAM_RE = re.compile(r"(?i)\b(api_key|access_token|session_id|token)=([^&\s'\"<>]+)")
_BEARER_RE = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=-]+")


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Return ``str(text)`` with every credential removed.

    Known secrets are replaced wherever they appear (raw or URL-encoded); ``api_key=...``-style
    query parameters and ``Bearer ...`` values are masked even when the secret is unknown.
    """
    out = str(text)
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            out = out.replace(form, "***")
    out = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}=***", out)
    return _BEARER_RE.sub(lambda m: f"{m.group(1)} ***", out)


def normalize_imdb_id(imdb_id: str | int) -> str:
    """``"tt0114709"``, ``"0114709"``, ``"114709"`` or ``114709`` -> ``"tt0114709"``.

    MovieLens ``links.csv`` keeps the numeric part without ``tt``; IMDb pads to 7 digits (8 for
    newer titles).
    """
    text = str(imdb_id).strip().lower()
    if text.startswith("tt"):
        text = text[2:]
    if not text.isdigit():
        raise ValueError(f"not an IMDb title id: {imdb_id!r}")
    return "tt" + text.zfill(7)


def iter_change_windows(start: date, end: date, days: int = CHANGES_WINDOW_DAYS) -> Iterator[tuple[date, date]]:
    """Consecutive inclusive ``[a, b]`` windows of at most ``days`` days covering ``[start, end]``."""
    if start > end:
        raise ValueError(f"start_date {start} is after end_date {end}")
    if days < 1:
        raise ValueError("days must be >= 1")
    cursor = start
    while cursor <= end:
        window_end = min(end, cursor + timedelta(days=days - 1))
        yield cursor, window_end
        cursor = window_end + timedelta(days=1)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent/garbled."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def _envelope_message(raw: bytes) -> str:
    """``"status_code 34: The resource ..."`` from a TMDb error envelope, else a short body excerpt."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        return f"non-JSON body {text!r}" if text else "empty body"
    if isinstance(body, dict):
        if "status_code" in body or "status_message" in body:
            return f"status_code {body.get('status_code')}: {body.get('status_message')}"
        if "errors" in body:
            return f"errors: {body.get('errors')}"
    return "unexpected error body"


def _fmt_rate(value: float) -> str:
    return f"{value:.1f} req/s"


# --------------------------------------------------------------------------------------------
# Rate limiter
# --------------------------------------------------------------------------------------------


class RateLimiter:
    """A strictly paced limiter shared by all workers of one client.

    Each :meth:`acquire` returns at least ``interval = (1 + jitter_allowance_s) / floor(rate)``
    seconds after the previous one returned, measured on the real clock (not on a schedule, so a
    late wake-up never lets two requests start closer together). There is no burst credit.

    Guarantee: request starts in any span of ``1 + jitter_allowance_s`` seconds number at most
    ``floor(rate)``. A server window ``[t, t + 1)`` sees the requests started in
    ``[t - d_max, t + 1 - d_min)``; while the one-way delay spread ``d_max - d_min`` stays below
    ``jitter_allowance_s`` that span is shorter, so the server never counts more than ``rate``
    requests in any 1-second window. With ``jitter_allowance_s = 0`` the bound holds at the client.

    :meth:`pause` sets a shared "paused until" instant that every waiter respects — also ones
    already queued — and halves the pacing rate (at most once per pause); the rate then grows back
    by 25 % per second without a new 429, up to the configured maximum.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        min_rate_fraction: float = 0.1,
        jitter_allowance_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.jitter_allowance_s = jitter_allowance_s
        self.max_rate = float(rate_per_s)
        self.rate = float(rate_per_s)
        self.min_rate = max(self.max_rate * min_rate_fraction, 1e-3)
        self.paused_until = 0.0
        self._clock = clock
        self._last_start = -math.inf
        self._last_cut = -math.inf
        self._next_recovery = math.inf
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def interval(self) -> float:
        """Minimum seconds between two request starts at the current (possibly lowered) rate."""
        whole = math.floor(self.rate)
        return (1.0 + self.jitter_allowance_s) / (whole if whole >= 1 else self.rate)

    def _recover(self, now: float) -> None:
        while self.rate < self.max_rate and now >= self._next_recovery:
            self.rate = min(self.max_rate, self.rate * 1.25)
            self._next_recovery += 1.0
        if self.rate >= self.max_rate:
            self._next_recovery = math.inf

    async def acquire(self) -> float:
        """Wait for this caller's turn to start one request; returns the granted start time."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # a lock belongs to one event loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:  # FIFO: one waiter at a time owns the next slot
            while True:
                now = self._clock()
                self._recover(now)
                target = max(self._last_start + self.interval, self.paused_until)
                if now >= target:
                    self._last_start = now
                    return now
                # The selector sleeps in whole milliseconds (rounding up), so sleep to ~1.5 ms before
                # the slot and yield for the rest: less drift below the rate, never before the slot.
                remaining = target - now
                await asyncio.sleep(remaining - _SPIN_S if remaining > _SPIN_S else 0)

    def pause(self, seconds: float, *, slow_down: bool = True) -> None:
        """Stop every worker for ``seconds`` from now (extends, never shortens, a running pause)."""
        now = self._clock()
        self.paused_until = max(self.paused_until, now + max(0.0, seconds))
        if slow_down and now - self._last_cut >= max(1.0, seconds):
            self.rate = max(self.min_rate, self.rate / 2)
            self._last_cut = now
        if slow_down:
            self._next_recovery = max(self.paused_until, now) + 1.0


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    status: int  # final HTTP status, 0 when no response arrived
    body: Any = None  # parsed JSON for a 200
    error: str | None = None  # scrubbed reason for anything but a usable 200


class TMDbClient:
    """Async TMDb v3 client. Use as ``async with TMDbClient(config) as client: ...``."""

    def __init__(
        self,
        config: TMDbConfig,
        *,
        log: Callable[[str], None] | None = None,
        progress_every_s: float = 10.0,
    ) -> None:
        if not config.secrets:
            raise ValueError("TMDbConfig needs read_access_token (preferred) or api_key")
        self.config = config
        self.progress_every_s = progress_every_s
        self.stats = CrawlStats()
        self.limiter = RateLimiter(
            config.rate_limit_per_s,
            min_rate_fraction=config.min_rate_fraction,
            jitter_allowance_s=config.jitter_allowance_s,
        )
        self._log_fn = log
        self._session: aiohttp.ClientSession | None = None
        self._base = config.base_url.rstrip("/")
        self._last_429_log = -math.inf
        self._rng = random.Random()

    def __repr__(self) -> str:
        return (
            f"TMDbClient(base_url={self._base!r}, auth={self.config.auth_style!r}, "
            f"rate_limit_per_s={self.config.rate_limit_per_s})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> TMDbClient:
        if self._session is not None:
            raise RuntimeError("TMDbClient is already open")
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if self.config.read_access_token:
            headers["Authorization"] = f"Bearer {self.config.read_access_token}"
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections, limit_per_host=self.config.max_connections
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            raise_for_status=False,
        )
        # aiohttp >= 3.10 silently re-sends an idempotent request once when a pooled connection
        # turns out to be closed. That hidden retry would bypass the shared limiter and the counters
        # (so the server could see more than rate_limit_per_s), so turn it off: our own retry loop
        # handles the ServerDisconnectedError, paced and counted like any other attempt.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- logging / scrubbing ----------------------------------------------------------------

    def _scrub(self, text: object) -> str:
        return scrub(text, self.config.secrets)

    def _log(self, line: str) -> None:
        if self._log_fn is not None:
            self._log_fn(self._scrub(line))

    # -- one request, with retries ------------------------------------------------------------

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        if not self.config.read_access_token and self.config.api_key:
            return {**params, "api_key": self.config.api_key}
        return params

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2 ** (attempt - 1)))."""
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, ceiling)

    def _on_rate_limited(self, retry_after: float | None, what: str) -> None:
        delay = self.config.default_retry_after_s if retry_after is None else retry_after
        self.stats.rate_limited += 1
        self.limiter.pause(delay)
        now = time.monotonic()
        if now - self._last_429_log >= max(1.0, min(self.progress_every_s, 10.0)):
            self._last_429_log = now
            source = "no Retry-After" if retry_after is None else f"Retry-After {retry_after:g}s"
            self._log(
                f"TMDb: HTTP 429 on {what} ({source}): all workers paused {delay:g}s, "
                f"pacing lowered to {_fmt_rate(self.limiter.rate)} (limit {_fmt_rate(self.limiter.max_rate)})"
            )

    async def _get(self, path: str, params: dict[str, str], *, what: str) -> _Response:
        if self._session is None:
            raise RuntimeError("TMDbClient is not open: use 'async with TMDbClient(config) as client'")
        url = self._base + path
        query = self._params(params)
        cfg = self.config
        attempts = 0  # non-429 failures
        limited = 0  # 429s
        while True:
            await self.limiter.acquire()
            self.stats.requests += 1
            status = 0
            retry_after_header: str | None = None
            try:
                async with self._session.get(url, params=query) as resp:
                    status = resp.status
                    retry_after_header = resp.headers.get("Retry-After")
                    raw = await resp.read()
            except TimeoutError:
                error = f"timeout after {cfg.timeout_s:g}s"
                status = 0
            except aiohttp.ClientError as exc:
                detail = self._scrub(exc)
                error = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
                status = 0
            else:
                if status == 200:
                    try:
                        body = json.loads(raw)
                    except (ValueError, UnicodeDecodeError):
                        error = "HTTP 200 with malformed JSON"
                    else:
                        if isinstance(body, dict) and body.get("success") is not False and "errors" not in body:
                            return _Response(200, body)
                        error = "HTTP 200 with an error or non-object body: " + self._scrub(_envelope_message(raw))
                elif status == 401:
                    message = self._scrub(_envelope_message(raw))
                    self._log(f"TMDb: HTTP 401 on {what}: credentials rejected ({message}); stopping")
                    raise TMDbAuthError(
                        f"TMDb rejected the credentials (HTTP 401, {message}) on GET {path} "
                        f"[auth: {cfg.auth_style}]. Check the TMDb read access token / API key."
                    )
                elif status == 429:
                    limited += 1
                    self._on_rate_limited(_parse_retry_after(retry_after_header), what)
                    if limited >= cfg.max_rate_limited_attempts:
                        return _Response(429, None, f"HTTP 429: still rate limited after {limited} attempts")
                    self.stats.retries += 1
                    continue  # the shared pause is the wait; no extra per-worker backoff
                elif status == 404:
                    return _Response(404, None, "HTTP 404: " + self._scrub(_envelope_message(raw)))
                elif status >= 500 or status == 408:
                    error = f"HTTP {status}: " + self._scrub(_envelope_message(raw))
                else:  # any other 4xx (400, 403, 422, ...) is permanent
                    return _Response(status, None, f"HTTP {status}: " + self._scrub(_envelope_message(raw)))
            attempts += 1
            if attempts >= cfg.max_attempts:
                return _Response(status, None, f"gave up after {attempts} attempts: {error}")
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempts))

    # -- endpoints ------------------------------------------------------------------------------

    async def fetch_movie(self, tmdb_id: int) -> FetchResult:
        """GET /movie/{id}?append_to_response=...&language=... -> FetchResult (never raises but 401)."""
        tmdb_id = int(tmdb_id)
        params: dict[str, str] = {}
        if self.config.append_to_response:
            params["append_to_response"] = ",".join(self.config.append_to_response)
        if self.config.language:
            params["language"] = self.config.language
        response = await self._get(f"/movie/{tmdb_id}", params, what=f"movie {tmdb_id}")
        ok = response.status == 200 and response.error is None
        result = FetchResult(
            tmdb_id=tmdb_id,
            status=response.status,
            fetched_at=time.time(),
            payload=response.body if ok else None,
            error=None if ok else response.error,
        )
        if result.outcome == "ok":
            self.stats.ok += 1
        elif result.outcome == "not_found":
            self.stats.not_found += 1
        else:
            self.stats.failed += 1
        return result

    async def find_by_imdb(self, imdb_id: str) -> int | None:
        """TMDb movie id for an IMDb id (``tt0114709`` or MovieLens' ``0114709``), None if no movie."""
        external = normalize_imdb_id(imdb_id)
        response = await self._get(
            f"/find/{external}", {"external_source": "imdb_id"}, what=f"find {external}"
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise TMDbRequestError(f"TMDb find {external} failed: {response.error}", response.status)
        results = response.body.get("movie_results") or []
        if not results:
            return None
        first = results[0]
        return int(first["id"]) if isinstance(first, dict) and first.get("id") is not None else None

    async def _changes_page(self, start: date, end: date, page: int) -> dict[str, Any]:
        params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "page": str(page)}
        response = await self._get("/movie/changes", params, what=f"changes {start}..{end} p{page}")
        if response.status != 200:
            raise TMDbRequestError(
                f"TMDb /movie/changes {start}..{end} page {page} failed: {response.error}", response.status
            )
        return response.body

    async def changed_movie_ids(self, start_date: date, end_date: date) -> set[int]:
        """Ids in TMDb's movie change feed for ``[start_date, end_date]`` (inclusive), all pages.

        Windows longer than :data:`CHANGES_WINDOW_DAYS` are split; pages 2..N of a window are
        fetched concurrently (the shared limiter still paces them). Any page that fails for good
        raises :class:`TMDbRequestError` — a partial change set would silently lose updates.
        """
        ids: set[int] = set()
        for window_start, window_end in iter_change_windows(start_date, end_date):
            first = await self._changes_page(window_start, window_end, 1)
            pages = [first]
            total_pages = min(int(first.get("total_pages") or 1), MAX_PAGES)
            if total_pages > 1:
                semaphore = asyncio.Semaphore(self.config.max_connections)

                async def one(
                    page: int, a: date = window_start, b: date = window_end, sem: asyncio.Semaphore = semaphore
                ) -> dict[str, Any]:
                    async with sem:
                        return await self._changes_page(a, b, page)

                pages += await _gather_or_cancel([one(p) for p in range(2, total_pages + 1)])
            for body in pages:
                for item in body.get("results") or []:
                    if isinstance(item, dict) and item.get("id") is not None:
                        ids.add(int(item["id"]))
        return ids

    # -- the crawl ------------------------------------------------------------------------------

    def _progress_line(self, prefix: str, current_rate: float | None = None) -> str:
        s = self.stats
        done = f"{s.done:,}/{s.total:,}" if s.total is not None else f"{s.done:,}"
        now_part = f"{_fmt_rate(current_rate)} now, " if current_rate is not None else ""
        return (
            f"{prefix}: {done} movies | fetched {s.ok:,} | not found {s.not_found:,} | failed {s.failed:,} "
            f"| retries {s.retries:,} (429s {s.rate_limited:,}) | {now_part}{_fmt_rate(s.rate)} avg "
            f"(limit {_fmt_rate(self.config.rate_limit_per_s)})"
        )

    async def _report_progress(self) -> None:
        last_t, last_requests = time.monotonic(), self.stats.requests
        while True:
            await asyncio.sleep(self.progress_every_s)
            now, requests = time.monotonic(), self.stats.requests
            current = (requests - last_requests) / (now - last_t) if now > last_t else 0.0
            last_t, last_requests = now, requests
            self._log(self._progress_line("TMDb crawl", current))

    async def fetch_many(
        self,
        tmdb_ids: Iterable[int],
        on_result: Callable[[FetchResult], Awaitable[None] | None],
    ) -> CrawlStats:
        """Fetch every distinct id with ``max_connections`` workers; ``on_result`` sees each result.

        Returns the crawl's :class:`CrawlStats` (also live as ``self.stats``). Repeated ids are
        fetched once (counted in ``duplicates``). A :class:`TMDbAuthError` — or an exception from
        ``on_result`` — cancels every worker and is re-raised.
        """
        if self._session is None:
            raise RuntimeError("TMDbClient is not open: use 'async with TMDbClient(config) as client'")
        total = len(set(tmdb_ids)) if isinstance(tmdb_ids, (list, tuple, set, frozenset, range)) else None
        self.stats = stats = CrawlStats(total=total)
        seen: set[int] = set()

        def unique() -> Iterator[int]:
            for raw in tmdb_ids:
                tmdb_id = int(raw)
                if tmdb_id in seen:
                    stats.duplicates += 1
                    continue
                seen.add(tmdb_id)
                yield tmdb_id

        ids = unique()

        async def worker() -> None:
            for tmdb_id in ids:  # shared iterator: next() never awaits, so no two workers get the same id
                result = await self.fetch_movie(tmdb_id)
                maybe = on_result(result)
                if inspect.isawaitable(maybe):
                    await maybe

        n_workers = self.config.max_connections if total is None else max(1, min(self.config.max_connections, total))
        workers = [asyncio.create_task(worker(), name=f"tmdb-worker-{i}") for i in range(n_workers)]
        reporter = (
            asyncio.create_task(self._report_progress(), name="tmdb-progress")
            if self._log_fn is not None and self.progress_every_s > 0
            else None
        )
        outcome = "finished"
        try:
            await _gather_or_cancel(workers)
        except TMDbAuthError:
            outcome = "stopped (HTTP 401: credentials rejected)"
            raise
        except BaseException as exc:
            outcome = f"stopped ({type(exc).__name__})"
            raise
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            stats.finished_at = time.monotonic()
            self._log(self._progress_line(f"TMDb crawl {outcome}"))
        return stats


async def _gather_or_cancel(aws: Iterable[Awaitable[Any]]) -> list[Any]:
    """Like ``asyncio.gather`` but the first exception cancels (and awaits) all the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:  # we were cancelled ourselves
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    if failed:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        exc = failed[0].exception()
        assert exc is not None  # `failed` holds only tasks that raised
        raise exc
    return [t.result() for t in tasks]
