"""The TMDb enrichment run: which ids MovieLens wants, /find for the missing ones, the resumable
crawl into the landing zone, and the changes-feed refresh with its watermark. No Dagster imports.

State kept beside the chunks in the landing-zone directory (`<data>/raw/tmdb/`; the landing zone
only reads `chunk-*.jsonl.gz`, so these files never look like records). All writes are atomic.

- `_find.json`: `/find/{imdb_id}` outcomes: `resolved` movie_id -> tmdb_id (reused by every later
  run and by the star build) and `misses` (no TMDb movie for that IMDb id; re-asked after
  `FIND_MISS_RECHECK_S`). A find that *failed* (5xx after retries) is not stored: asked again next run.
- `_refresh_watermark.json`: `{"synced_through": "YYYY-MM-DD", ...}` — the star tables reflect every
  TMDb change listed by `/movie/changes` up to and including that UTC date (see `refresh_window`).
- `_refresh_candidate.json`: written by a refresh crawl that re-fetched every changed movie
  successfully; promoted to the watermark by `commit_refresh_candidate` once the star rebuild from
  this landing zone succeeded. A failed rebuild leaves the watermark where it was, so the next
  refresh walks the same window again (re-fetching is idempotent).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from movielens_assets.core.data.atomic import atomic_write_text
from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.client import (
    CrawlStats,
    TMDbClient,
    TMDbConfig,
    TMDbRequestError,
    _gather_or_cancel,
    normalize_imdb_id,
)
from movielens_assets.core.tmdb.landing import LandingZone

FIND_FILE = "_find.json"
WATERMARK_FILE = "_refresh_watermark.json"
CANDIDATE_FILE = "_refresh_candidate.json"
#: TMDb's change log starts here; older watermarks are clamped to it.
CHANGES_EPOCH = date(2012, 10, 5)
#: An IMDb id /find did not know is asked again after this long (TMDb adds ids over time).
FIND_MISS_RECHECK_S = 30 * 86400.0
#: A crawl writes a landing chunk every this many results (a killed process loses at most this many - 1).
FLUSH_EVERY = 250

Log = Callable[[str], None]


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: not valid JSON ({exc}); delete it to start this state afresh") from exc
    if not isinstance(data, dict):
        raise DataValidationError(f"{path}: expected a JSON object")
    return data


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


# -- /find state ----------------------------------------------------------------------------------


@dataclass
class FindState:
    """Outcomes of `/find/{imdb_id}` for MovieLens movies without a tmdbId."""

    resolved: dict[int, int] = field(default_factory=dict)
    """movie_id -> tmdb_id."""
    misses: dict[int, tuple[str, float]] = field(default_factory=dict)
    """movie_id -> (imdb_id, checked_at unix s): TMDb has no movie for that IMDb id (yet)."""

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> FindState:
        path = Path(root) / FIND_FILE
        data = _read_json(path)
        if data is None:
            return cls()
        try:
            resolved = {int(m): int(t) for m, t in (data.get("resolved") or {}).items()}
            misses = {int(m): (str(v["imdb_id"]), float(v["checked_at"]))
                      for m, v in (data.get("misses") or {}).items()}
        except (TypeError, ValueError, KeyError) as exc:
            raise DataValidationError(
                f"{path}: unexpected content ({exc}); delete it to redo the /find lookups"
            ) from exc
        return cls(resolved, misses)

    def save(self, root: str | os.PathLike[str]) -> Path:
        path = Path(root) / FIND_FILE
        _write_json(path, {
            "resolved": {str(m): t for m, t in sorted(self.resolved.items())},
            "misses": {str(m): {"imdb_id": i, "checked_at": c} for m, (i, c) in sorted(self.misses.items())},
        })
        return path


# -- what MovieLens wants -------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkIndex:
    """The TMDb side of `links` (plus ids resolved through /find)."""

    movies: int
    wanted: list[int]
    """Distinct tmdb_ids to hold in the landing zone, in movie_id order."""
    shared: dict[int, list[int]]
    """tmdb_id -> the MovieLens movie_ids mapped to it, for tmdb_ids shared by several movies."""
    without_tmdb_id: list[tuple[int, str | None]]
    """(movie_id, imdb_id) of movies with no tmdbId in links."""
    unresolved: list[tuple[int, str | None]]
    """(movie_id, imdb_id) of movies with neither a links tmdbId nor a /find match."""
    resolved_used: int
    """Movies whose tmdb_id comes from /find."""


def link_index(links: pa.Table, resolved: Mapping[int, int] | None = None) -> LinkIndex:
    """Effective movie_id -> tmdb_id (links win; /find fills the gaps) and what that implies."""
    resolved = resolved or {}
    movie_ids = links["movie_id"].to_pylist()
    imdb_ids = links["imdb_id"].to_pylist() if "imdb_id" in links.column_names else [None] * len(movie_ids)
    tmdb_ids = links["tmdb_id"].to_pylist()
    rows = sorted(zip(movie_ids, imdb_ids, tmdb_ids, strict=True), key=lambda r: r[0])
    by_tmdb: dict[int, list[int]] = {}
    without: list[tuple[int, str | None]] = []
    unresolved: list[tuple[int, str | None]] = []
    used = 0
    for movie_id, imdb_id, tmdb_id in rows:
        if tmdb_id is None:
            without.append((movie_id, imdb_id))
            tmdb_id = resolved.get(movie_id)
            if tmdb_id is None:
                unresolved.append((movie_id, imdb_id))
                continue
            used += 1
        by_tmdb.setdefault(int(tmdb_id), []).append(int(movie_id))
    return LinkIndex(
        movies=len(rows),
        wanted=list(by_tmdb),
        shared={t: ms for t, ms in by_tmdb.items() if len(ms) > 1},
        without_tmdb_id=without,
        unresolved=unresolved,
        resolved_used=used,
    )


# -- watermark -----------------------------------------------------------------------------------


def read_watermark(root: str | os.PathLike[str]) -> date | None:
    """The committed `synced_through` date, None before the first successful refresh."""
    data = _read_json(Path(root) / WATERMARK_FILE)
    return None if data is None else date.fromisoformat(data["synced_through"])


def read_refresh_candidate(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    return _read_json(Path(root) / CANDIDATE_FILE)


def write_refresh_candidate(root: str | os.PathLike[str], synced_through: date, **info: Any) -> Path:
    path = Path(root) / CANDIDATE_FILE
    _write_json(path, {"synced_through": synced_through.isoformat(), "written_at": time.time(), **info})
    return path


def commit_refresh_candidate(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Promote the refresh candidate to the watermark (atomic rename); returns it, or None if none.

    Call only after the star tables were rebuilt from this landing zone. The watermark never moves
    backwards: an older candidate is discarded.
    """
    root = Path(root)
    candidate = read_refresh_candidate(root)
    if candidate is None:
        return None
    new = date.fromisoformat(candidate["synced_through"])
    current = read_watermark(root)
    if current is not None and current > new:
        (root / CANDIDATE_FILE).unlink(missing_ok=True)
        return None
    os.replace(root / CANDIDATE_FILE, root / WATERMARK_FILE)
    return candidate


def refresh_window(zone: LandingZone, today: date) -> tuple[date, date, str]:
    """`[start, today]` to read from /movie/changes, and where `start` comes from.

    After a committed refresh, `start` is the watermark date itself (inclusive: the day that was
    still running at the last refresh is read again — the 1-day overlap of the TMDb guide).
    Before the first refresh it is the UTC date of the oldest record in the landing zone: every
    payload was fetched on or after that day, so the changes since then cover everything that can
    be stale. Nothing is re-crawled wholesale. Clamped to TMDb's change log (2012-10-05) and `today`.
    """
    watermark = read_watermark(zone.root)
    if watermark is not None:
        start, source = watermark, "watermark"
    else:
        oldest = zone.stats()["oldest_fetched_at"]
        if oldest is None:
            start, source = today, "empty landing zone"
        else:
            start, source = datetime.fromtimestamp(oldest, UTC).date(), "oldest fetched_at"
    start = min(max(start, CHANGES_EPOCH), today)
    return start, today, source


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class EnrichReport:
    """What one enrichment run did (counts of this run unless said otherwise)."""

    mode: str = "crawl"
    movies: int = 0
    wanted: int = 0
    pending: int = 0
    cached: int = 0
    ok: int = 0
    not_found: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed_s: float = 0.0
    find_requests: int = 0
    find_failed: int = 0
    resolved_new: int = 0
    resolved_total: int = 0
    unresolved: list[tuple[int, str | None]] = field(default_factory=list)
    shared: dict[int, list[int]] = field(default_factory=dict)
    changes: dict[str, Any] | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, stats: CrawlStats) -> None:
        self.ok += stats.ok
        self.not_found += stats.not_found
        self.failed += stats.failed
        self.requests += stats.requests
        self.retries += stats.retries
        self.rate_limited += stats.rate_limited

    def counts(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "movies": self.movies, "wanted": self.wanted, "pending": self.pending,
            "cached": self.cached, "ok": self.ok, "not_found": self.not_found, "failed": self.failed,
            "requests": self.requests, "retries": self.retries, "rate_limited": self.rate_limited,
            "rate": round(self.rate, 2), "elapsed_s": round(self.elapsed_s, 3),
            "find_requests": self.find_requests, "find_failed": self.find_failed,
            "resolved_new": self.resolved_new, "resolved": self.resolved_total,
            "unresolved": len(self.unresolved), "shared_tmdb_ids": len(self.shared),
            "movies_with_shared_tmdb_id": sum(len(v) for v in self.shared.values()),
        }


async def _resolve(
    client: TMDbClient, state: FindState, todo: Sequence[tuple[int, str]], report: EnrichReport, log: Log
) -> None:
    """/find each (movie_id, imdb_id) with at most max_connections in flight; updates `state`."""
    if not todo:
        return
    log(f"TMDb /find: resolving {len(todo):,} MovieLens movies without a tmdbId through their IMDb id")
    queue = iter(todo)

    async def worker() -> None:
        for movie_id, imdb_id in queue:
            report.find_requests += 1
            try:
                tmdb_id = await client.find_by_imdb(imdb_id)
            except TMDbRequestError as exc:
                report.find_failed += 1
                log(f"TMDb /find for movie {movie_id} ({imdb_id}) failed, retried next run: {exc}")
                continue
            if tmdb_id is None:
                state.misses[movie_id] = (imdb_id, time.time())
            else:
                state.resolved[movie_id] = tmdb_id
                state.misses.pop(movie_id, None)
                report.resolved_new += 1

    n = max(1, min(client.config.max_connections, len(todo)))
    await _gather_or_cancel([worker() for _ in range(n)])
    without = report.find_requests - report.resolved_new - report.find_failed
    log(f"TMDb /find: {report.resolved_new:,} resolved, {without:,} "
        f"without a TMDb movie, {report.find_failed:,} failed")


def _find_todo(index: LinkIndex, state: FindState, now: float) -> list[tuple[int, str]]:
    todo: list[tuple[int, str]] = []
    for movie_id, imdb_id in index.without_tmdb_id:
        if not imdb_id or movie_id in state.resolved:
            continue
        try:
            imdb = normalize_imdb_id(imdb_id)
        except ValueError:
            continue
        miss = state.misses.get(movie_id)
        if miss is not None and miss[0] == imdb and now - miss[1] < FIND_MISS_RECHECK_S:
            continue
        todo.append((movie_id, imdb))
    return todo


async def enrich(
    config: TMDbConfig,
    zone: LandingZone,
    links: pa.Table,
    *,
    refresh_changes: bool = False,
    max_age_s: float | None = None,
    today: date | None = None,
    log: Log = print,
    progress_every_s: float = 15.0,
    flush_every: int = FLUSH_EVERY,
) -> EnrichReport:
    """Bring the landing zone up to date for `links` (movie_id, imdb_id, tmdb_id).

    1. `/find` the movies without a tmdbId (not already resolved / recently missed); saved at once.
    2. Crawl `zone.pending(wanted, max_age_s)`: missing, failed (and, with `max_age_s`, stale) ids.
       Resumable: every result is appended to the landing zone as it arrives.
    3. With `refresh_changes`: read `/movie/changes` over `refresh_window`, re-fetch the changed ids
       we track, and — only if none of them failed — write the refresh candidate.

    A `TMDbAuthError` (HTTP 401) propagates after everything fetched so far is stored.
    """
    started = time.monotonic()
    report = EnrichReport(mode="refresh" if refresh_changes else "crawl")
    state = FindState.load(zone.root)
    index = link_index(links, state.resolved)
    report.movies = index.movies
    today = today or _utc_today()
    async with TMDbClient(config, log=log, progress_every_s=progress_every_s) as client:
        todo = _find_todo(index, state, time.time())
        if todo:
            try:
                await _resolve(client, state, todo, report, log)
            finally:
                state.save(zone.root)
            index = link_index(links, state.resolved)
        report.resolved_total = index.resolved_used
        report.unresolved = index.unresolved
        report.shared = index.shared
        report.wanted = len(index.wanted)

        pending = zone.pending(index.wanted, max_age_s=max_age_s)
        report.pending = len(pending)
        report.cached = report.wanted - report.pending
        log(f"TMDb crawl: {report.wanted:,} tmdb ids wanted for {index.movies:,} MovieLens movies, "
            f"{report.cached:,} already in the landing zone, {report.pending:,} to fetch "
            f"(limit {config.rate_limit_per_s:g} req/s, {config.max_connections} connections)")
        if pending:
            with zone.writer(flush_every=flush_every) as writer:
                try:
                    report.add(await client.fetch_many(pending, on_result=writer.append))
                except BaseException:
                    report.add(client.stats)
                    raise

        if refresh_changes:
            start, end, source = refresh_window(zone, today)
            log(f"TMDb refresh: reading /movie/changes {start}..{end} (start from the {source})")
            changed = await client.changed_movie_ids(start, end)
            just_fetched = set(pending)
            tracked = [t for t in index.wanted if t in changed and t not in just_fetched]
            report.changes = {
                "start": start.isoformat(), "end": end.isoformat(), "start_from": source,
                "changed_ids": len(changed), "tracked_changed": len(tracked), "refetch_failed": 0,
                "candidate": None,
            }
            log(f"TMDb refresh: {len(changed):,} movies changed on TMDb, {len(tracked):,} of them tracked: re-fetching")
            failed = 0
            if tracked:
                with zone.writer(flush_every=flush_every) as writer:
                    try:
                        stats = await client.fetch_many(tracked, on_result=writer.append)
                    except BaseException:
                        report.add(client.stats)
                        raise
                report.add(stats)
                failed = stats.failed
            report.changes["refetch_failed"] = failed
            if failed:
                log(f"TMDb refresh: {failed:,} changed movies could not be re-fetched; the watermark stays "
                    f"before {start} so the next refresh reads this window again")
            else:
                write_refresh_candidate(zone.root, end, start=start.isoformat(), tracked_changed=len(tracked))
                report.changes["candidate"] = end.isoformat()
    report.elapsed_s = time.monotonic() - started
    return report


def run_enrich(config: TMDbConfig, zone: LandingZone, links: pa.Table, **kwargs: Any) -> EnrichReport:
    """Synchronous wrapper of :func:`enrich` (its own event loop)."""
    return asyncio.run(enrich(config, zone, links, **kwargs))
