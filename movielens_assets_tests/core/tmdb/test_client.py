"""The async TMDb client against the faithful fake server (all counts and rates measured at the server)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, timedelta
from itertools import pairwise
from typing import Any

import aiohttp
import pytest

from movielens_assets.core.tmdb.client import (
    CHANGES_WINDOW_DAYS,
    CrawlStats,
    RateLimiter,
    TMDbAuthError,
    TMDbClient,
    TMDbConfig,
    TMDbRequestError,
    iter_change_windows,
    normalize_imdb_id,
    scrub,
)
from movielens_assets.core.tmdb.records import FetchResult
from movielens_assets_tests.servers.tmdb_fake import FakeTMDb, make_movies

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXJlYWQtdG9rZW4.U0VDUkVULVNJRw"
API_KEY = "5ec7e7ab5ec7e7ab5ec7e7ab5ec7e7ab"
MOVIES = make_movies(range(1, 301))
MISSING = list(range(900_001, 900_021))  # 20 ids TMDb does not know (merged / deleted)
RATE = 200.0


def config(srv: FakeTMDb, **overrides: Any) -> TMDbConfig:
    base = TMDbConfig(
        base_url=srv.base_url,
        read_access_token=TOKEN,
        rate_limit_per_s=RATE,
        max_connections=20,
        # generous: on a loaded 2-core CI machine the in-process server can take > 0.5 s to answer, and a
        # client timeout on a delivered response would count as a second fetch at the server. Tests of
        # timeouts set their own, shorter value.
        timeout_s=5.0,
        backoff_base_s=0.02,
        backoff_max_s=0.1,
        default_retry_after_s=0.6,
    )
    return replace(base, **overrides)


class Crawl:
    """The outcome of one fetch_many run."""

    def __init__(self) -> None:
        self.results: list[FetchResult] = []
        self.logs: list[tuple[float, str]] = []
        self.stats: CrawlStats | None = None
        self.error: BaseException | None = None
        self.ended_at = 0.0

    def log(self, line: str) -> None:
        self.logs.append((time.monotonic(), line))

    @property
    def by_id(self) -> dict[int, FetchResult]:
        return {r.tmdb_id: r for r in self.results}


def crawl(cfg: TMDbConfig, ids, *, progress_every_s: float = 10.0, on_result: Callable | None = None) -> Crawl:
    out = Crawl()

    async def main() -> None:
        async def collect(result: FetchResult) -> None:  # an async callback, like the landing zone
            out.results.append(result)
            if on_result is not None:
                on_result(result)

        async with TMDbClient(cfg, log=out.log, progress_every_s=progress_every_s) as client:
            try:
                out.stats = await client.fetch_many(ids, collect)
            except BaseException as exc:  # noqa: BLE001 - inspected by the tests
                out.error = exc
            out.ended_at = time.monotonic()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert not others, f"fetch_many left tasks behind: {others}"

    asyncio.run(main())
    return out


def run(cfg: TMDbConfig, fn: Callable[[TMDbClient], Any], *, log: Callable[[str], None] | None = None) -> Any:
    async def main() -> Any:
        async with TMDbClient(cfg, log=log) as client:
            return await fn(client)

    return asyncio.run(main())


# -- the crawl: exactly once, despite faults ----------------------------------------------------


def test_every_movie_fetched_exactly_once_despite_5pct_mixed_faults():
    fault_mix = ("502", "503", "504", "502html", "reset", "malformed", "slow")
    with FakeTMDb(movies=MOVIES, token=TOKEN, fault_rate=0.05, fault_mix=fault_mix, slow_s=4.0,
                  latency_s=(0.001, 0.01), seed=16) as srv:
        ids = list(MOVIES) + MISSING + [1, 2, 3]  # duplicates are fetched once
        # timeout_s < slow_s: "slow" faults time out and are retried. Not shorter: on a loaded 2-core CI machine
        # a normal answer once took > 0.5 s, and its retry counted as a second fetch at the server.
        out = crawl(config(srv, timeout_s=2.0), ids)
        time.sleep(2.1)  # let slow handlers whose client timed out finish
        records = srv.snapshot()

    assert out.error is None
    faults = Counter(r.fault for r in records if r.fault)
    assert set(faults) == set(fault_mix), faults  # the seed makes the fault pattern deterministic
    assert any(r.fault == "slow" and not r.delivered for r in records)  # a client timeout happened
    # exactly one usable 200 per movie, counted at the server
    assert srv.successful_fetches() == Counter({i: 1 for i in MOVIES})
    # every id reported once, with the payload
    assert sorted(r.tmdb_id for r in out.results) == sorted(set(ids))
    for tmdb_id in MOVIES:
        result = out.by_id[tmdb_id]
        assert result.outcome == "ok" and result.payload["id"] == tmdb_id
        assert {"credits", "keywords", "release_dates"} <= set(result.payload)
    # 404s: answered once each, recorded, never retried
    for tmdb_id in MISSING:
        assert out.by_id[tmdb_id].status == 404 and out.by_id[tmdb_id].outcome == "not_found"
        assert sum(1 for r in records if r.tmdb_id == tmdb_id and r.status == 404) == 1
    stats = out.stats
    assert (stats.ok, stats.not_found, stats.failed, stats.duplicates) == (300, 20, 0, 3)
    assert stats.requests == len(records)  # no hidden (unpaced, uncounted) requests
    assert stats.retries == len(records) - 320
    assert srv.max_in_window(1.0) <= RATE
    assert srv.max_in_flight <= 20


def test_404_and_other_4xx_are_final_and_not_retried():
    script = {5: ["403"], 6: ["422"], 7: ["400"]}
    with FakeTMDb(movies=MOVIES, token=TOKEN, script=script) as srv:
        out = crawl(config(srv), [5, 6, 7, 900_001, 8])
        counts = Counter(r.tmdb_id for r in srv.snapshot())
    assert {i: out.by_id[i].status for i in (5, 6, 7, 900_001, 8)} == {5: 403, 6: 422, 7: 400, 900_001: 404, 8: 200}
    assert counts == Counter({5: 1, 6: 1, 7: 1, 900_001: 1, 8: 1})
    assert "status_code 34" in out.by_id[900_001].error
    assert out.by_id[5].outcome == "failed" and out.by_id[5].error.startswith("HTTP 403")
    assert (out.stats.ok, out.stats.not_found, out.stats.failed, out.stats.retries) == (1, 1, 3, 0)


@pytest.mark.parametrize(
    ("fault", "status", "error_part"),
    [("503", 503, "HTTP 503"), ("reset", 0, "ServerDisconnectedError"), ("slow", 0, "timeout"),
     ("malformed", 200, "malformed JSON")],
)
def test_retryable_failures_give_up_after_max_attempts(fault, status, error_part):
    with FakeTMDb(movies=MOVIES, token=TOKEN, script={1: [fault] * 10}, slow_s=1.5) as srv:
        out = crawl(config(srv, max_attempts=4, timeout_s=0.6), [1, 2])
        attempts = srv.requests_for(1)
    result = out.by_id[1]
    assert result.outcome == "failed" and result.status == status and result.payload is None
    assert result.error.startswith("gave up after 4 attempts") and error_part in result.error
    assert attempts == 4
    assert out.by_id[2].outcome == "ok"
    assert out.stats.retries == 3


def test_backoff_uses_full_jitter_within_the_exponential_cap():
    cfg = TMDbConfig(api_key="k", backoff_base_s=0.5, backoff_max_s=3.0)
    client = TMDbClient(cfg)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        delays = [client._backoff(attempt) for _ in range(300)]
        assert all(0 <= d <= cap for d in delays)
        assert min(delays) < cap * 0.2 and max(delays) > cap * 0.8  # spread over [0, cap]: full jitter


# -- rate limit ---------------------------------------------------------------------------------


def test_rate_never_exceeded_in_any_sliding_second_at_the_server():
    with FakeTMDb(movies=MOVIES, token=TOKEN, latency_s=(0.002, 0.02)) as srv:
        out = crawl(config(srv), list(MOVIES))
        records = srv.snapshot()
    assert out.error is None and out.stats.ok == 300
    assert srv.max_in_window(1.0, records=records) <= RATE
    span = records[-1].t - records[0].t
    assert len(records) / span >= 0.7 * RATE  # and it does not crawl needlessly slowly


def test_low_rate_is_paced_not_bursted():
    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        out = crawl(config(srv, rate_limit_per_s=20), list(range(1, 41)))
        times = sorted(r.t for r in srv.snapshot())
    assert out.stats.ok == 40
    assert srv.max_in_window(1.0) <= 20
    assert srv.max_in_window(0.25) <= 7  # evenly spaced (5 per 0.25 s, + arrival jitter): no burst
    assert times[9] - times[0] >= 0.4  # the first ten are not sent at once
    assert 1.8 <= times[-1] - times[0] <= 3.0


def test_limiter_spacing_is_strict_on_the_client_clock():
    async def main() -> list[float]:
        limiter = RateLimiter(100, jitter_allowance_s=0.0)
        starts: list[float] = []

        async def worker() -> None:
            for _ in range(15):
                starts.append(await limiter.acquire())

        await asyncio.gather(*(worker() for _ in range(10)))
        return starts

    starts = asyncio.run(main())
    gaps = [b - a for a, b in pairwise(starts)]
    assert len(starts) == 150 and min(gaps) >= 0.01 - 1e-6


def test_max_connections_caps_requests_in_flight():
    with FakeTMDb(movies=MOVIES, token=TOKEN, latency_s=0.05) as srv:
        out = crawl(config(srv, max_connections=5, rate_limit_per_s=1000), list(range(1, 61)))
        assert out.stats.ok == 60
        assert srv.max_in_flight == 5


# -- 429 ----------------------------------------------------------------------------------------


def _gap_after(records, t: float, grace: float) -> float:
    later = [r.t for r in records if r.t > t + grace]
    return min(later) - t if later else float("inf")


@pytest.mark.parametrize(("retry_after", "pause"), [(1, 1.0), (None, 0.6)], ids=["retry-after-1", "no-retry-after"])
def test_429_pauses_every_worker(retry_after, pause):
    ids = list(range(1, 161))
    with FakeTMDb(movies=MOVIES, token=TOKEN, retry_after=retry_after, script={40: ["429"]}) as srv:
        out = crawl(config(srv, default_retry_after_s=0.6), ids)
        records = srv.snapshot()
    (hit,) = [r for r in records if r.status == 429]
    # Requests already on the wire when the 429 left the server may still land within `grace`;
    # after that, no worker sends anything until the pause is over.
    grace = 0.05
    assert _gap_after(records, hit.t_end, grace) >= pause - grace
    assert sum(1 for r in records if hit.t_end + grace < r.t < hit.t_end + pause - grace) == 0
    assert out.stats.rate_limited == 1 and out.stats.ok == 160
    assert srv.successful_fetches() == Counter({i: 1 for i in ids})
    assert any("429" in line and "paused" in line for _, line in out.logs)


def test_429_with_retry_after_zero_retries_at_once_but_slows_down():
    ids = list(range(1, 201))
    with FakeTMDb(movies=MOVIES, token=TOKEN, retry_after=0, script={40: ["429"]}) as srv:
        out = crawl(config(srv), ids)
        records = srv.snapshot()
    (hit,) = [r for r in records if r.status == 429]
    assert _gap_after(records, hit.t_end, 0.0) < 0.1  # Retry-After: 0 is honoured: no long pause
    # ... but the shared rate was halved for a second after it
    after = [r for r in records if hit.t_end + 0.05 <= r.t < hit.t_end + 0.85]
    assert len(after) <= RATE / 2 * 0.8 + 2
    assert out.stats.ok == 200 and srv.successful_fetches(40) == 1


def test_server_side_429s_are_absorbed_by_the_shared_slowdown():
    # The server allows 60/s (burst 5) but the client is configured too fast (200/s).
    ids = list(range(1, 151))
    with FakeTMDb(movies=MOVIES, token=TOKEN, rate_limit_per_s=60, rate_burst=5, retry_after=None) as srv:
        out = crawl(config(srv, default_retry_after_s=0.2, max_rate_limited_attempts=50), ids)
        n_429 = srv.status_counts()[429]
    assert out.error is None and out.stats.ok == 150 and out.stats.failed == 0
    assert srv.successful_fetches() == Counter({i: 1 for i in ids})
    assert out.stats.rate_limited == n_429 >= 1
    assert n_429 < 150  # far fewer 429s than movies: every worker backs off together


def test_persistent_429_gives_up_after_the_429_bound():
    with FakeTMDb(movies=MOVIES, token=TOKEN, retry_after=0, script={3: ["429"] * 50}) as srv:
        out = crawl(config(srv, max_rate_limited_attempts=5, max_attempts=2), [3, 4])
        attempts = srv.requests_for(3)
    assert out.by_id[3].status == 429 and out.by_id[3].outcome == "failed"
    assert attempts == 5
    assert out.by_id[4].outcome == "ok"


# -- 401 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["bearer", "api_key"])
def test_401_stops_the_crawl_cleanly_without_leaking_the_secret(style):
    wrong = "WRONG-" + (TOKEN if style == "bearer" else API_KEY)
    creds = {"read_access_token": wrong} if style == "bearer" else {"read_access_token": None, "api_key": wrong}
    with FakeTMDb(movies=MOVIES, token=TOKEN, api_key=API_KEY, latency_s=0.005) as srv:
        out = crawl(config(srv, **creds), list(MOVIES))
        time.sleep(0.1)  # grace: requests already written to a socket may still be parsed
        n_at_stop = len(srv.snapshot())
        time.sleep(0.4)
        n_later = len(srv.snapshot())
    assert isinstance(out.error, TMDbAuthError)
    message = str(out.error)
    assert "401" in message and "Invalid API key" in message and wrong not in message
    assert n_at_stop == n_later  # nothing more after the stop
    assert n_at_stop <= 20  # only requests already under way
    assert out.results == []
    assert all(wrong not in line for _, line in out.logs)
    assert any("stopped" in line and "401" in line for _, line in out.logs)


def test_401_from_a_single_fetch_raises():
    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        with pytest.raises(TMDbAuthError):
            run(config(srv, read_access_token="nope"), lambda c: c.fetch_movie(1))


# -- auth styles and secrets --------------------------------------------------------------------


def test_bearer_is_preferred_and_api_key_is_the_fallback():
    with FakeTMDb(movies=MOVIES, token=TOKEN, api_key=API_KEY) as srv:
        assert run(config(srv, api_key=API_KEY), lambda c: c.fetch_movie(1)).outcome == "ok"  # both set
        assert run(config(srv, read_access_token=None, api_key=API_KEY), lambda c: c.fetch_movie(2)).outcome == "ok"
        first, second = srv.snapshot()
    assert first.auth == "bearer" and "api_key" not in first.query
    assert second.auth == "api_key" and second.query["api_key"] == "***"
    for record in (first, second):
        assert record.query["append_to_response"] == "credits,keywords,release_dates"
        assert record.query["language"] == "en-US"


def test_secret_never_in_logs_errors_or_repr():
    lines: list[str] = []
    script = {1: ["reset"] * 5, 2: ["slow"] * 5, 3: ["503"] * 5, 4: ["403"], 5: ["malformed"] * 5}
    with FakeTMDb(movies=MOVIES, token=TOKEN, api_key=API_KEY, script=script, slow_s=0.5, retry_after=None) as srv:
        cfg = config(srv, read_access_token=None, api_key=API_KEY, max_attempts=3, timeout_s=0.2)
        srv.inject("429")
        out = crawl(cfg, [1, 2, 3, 4, 5, 6, 900_001], progress_every_s=0.05)
        lines += [line for _, line in out.logs]
        errors = [r.error or "" for r in out.results]
        with pytest.raises(TMDbRequestError) as excinfo:
            srv.inject(*["500"] * 3)
            run(cfg, lambda c: c.changed_movie_ids(date(2026, 1, 1), date(2026, 1, 2)), log=lines.append)
        with pytest.raises(TMDbAuthError) as auth_error:
            run(replace(cfg, api_key=API_KEY + "x"), lambda c: c.fetch_movie(1), log=lines.append)
    # a connection error too: nothing listens on the port any more
    dead = run(replace(cfg, max_attempts=1), lambda c: c.fetch_movie(1))
    assert dead.status == 0 and dead.error
    assert len(errors) == 7 and sum(1 for e in errors if e) == 6 and lines
    texts = lines + errors + [dead.error, str(excinfo.value), str(auth_error.value), repr(cfg), repr(TMDbClient(cfg)),
                              repr(replace(cfg, read_access_token=TOKEN))]
    for text in texts:
        assert API_KEY not in text and TOKEN not in text, text


def test_scrub_masks_urls_and_bearer_values():
    url = f"http://127.0.0.1:1/3/movie/5?append_to_response=credits&api_key={API_KEY}&language=en-US"
    message = str(aiohttp.InvalidURL(url))
    assert API_KEY in message  # aiohttp exceptions do carry the full URL ...
    assert API_KEY not in scrub(message)  # ... which the client sanitizes
    assert "api_key=***" in scrub(message) and "language=en-US" in scrub(message)
    assert scrub("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert scrub(f"x {TOKEN} y", [TOKEN]) == "x *** y"
    assert scrub(f"k={API_KEY.upper()}", [API_KEY.upper()]) == "k=***"


def test_config_validation():
    with pytest.raises(ValueError):
        TMDbClient(TMDbConfig())  # no credentials at all
    with pytest.raises(ValueError):
        TMDbConfig(api_key="k", rate_limit_per_s=0)
    with pytest.raises(ValueError):
        TMDbConfig(api_key="k", append_to_response=tuple(f"x{i}" for i in range(21)))


def test_using_the_client_outside_async_with_is_an_error():
    async def main() -> None:
        await TMDbClient(TMDbConfig(api_key="k")).fetch_movie(1)

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(main())


# -- progress -----------------------------------------------------------------------------------


def test_progress_lines_are_throttled_and_summarised():
    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        out = crawl(config(srv), list(MOVIES) + MISSING[:5], progress_every_s=0.25)
    times = [t for t, _ in out.logs]
    lines = [line for _, line in out.logs]
    assert len(lines) >= 3
    assert all(b - a >= 0.2 for a, b in zip(times[:-2], times[1:-1], strict=True))  # periodic lines
    assert len(lines) <= out.stats.elapsed / 0.25 + 2
    final = lines[-1]
    assert final.startswith("TMDb crawl finished: 305/305 movies")
    for part in ("fetched 300", "not found 5", "failed 0", "retries 0", "req/s"):
        assert part in final
    assert "now" in lines[0] and "req/s" in lines[0]


# -- on_result and cancellation -------------------------------------------------------------------


def test_on_result_errors_cancel_the_workers():
    seen: list[int] = []

    def explode(result: FetchResult) -> None:
        seen.append(result.tmdb_id)
        if len(seen) == 10:
            raise OSError("landing zone full")

    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        out = crawl(config(srv), list(MOVIES), on_result=explode)
        time.sleep(0.1)  # grace for requests already on the wire
        n_at_stop = len(srv.snapshot())
        time.sleep(0.3)
        assert len(srv.snapshot()) == n_at_stop
    assert isinstance(out.error, OSError) and n_at_stop < 40


def test_fetch_many_takes_a_generator_and_a_sync_callback():
    got: list[FetchResult] = []

    async def main() -> CrawlStats:
        async with TMDbClient(config(srv)) as client:
            return await client.fetch_many((i for i in range(1, 31)), got.append)

    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        stats = asyncio.run(main())
    assert stats.total is None and stats.ok == 30 and len(got) == 30
    assert stats.as_dict()["rate"] > 0 and stats.elapsed > 0


# -- changes feed and find ----------------------------------------------------------------------


def test_changes_feed_pages_and_splits_long_windows():
    day0 = date(2026, 1, 1)
    changes = {10_000 + i: day0 + timedelta(days=i % 40) for i in range(1200)}  # 30 ids a day for 40 days
    changes[7] = [day0 - timedelta(days=3), day0 + timedelta(days=20)]
    start, end = day0 + timedelta(days=2), day0 + timedelta(days=36)  # 35 days
    expected = {i for i, d in changes.items() if any(start <= x <= end for x in (d if isinstance(d, list) else [d]))}
    with FakeTMDb(movies=MOVIES, token=TOKEN, changes=changes) as srv:
        got = run(config(srv), lambda c: c.changed_movie_ids(start, end))
        one_day = run(config(srv), lambda c: c.changed_movie_ids(day0, day0))
        records = srv.snapshot()
    assert got == expected and 7 in got and len(got) == 35 * 30 + 1
    assert one_day == {i for i, d in changes.items() if d == day0}
    assert all(r.status == 200 for r in records)  # never a 422 for a too-long window
    windows = sorted({(r.query["start_date"], r.query["end_date"]) for r in records
                      if r.query["start_date"] != r.query["end_date"]})
    spans = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in windows]
    assert spans[0][0] == start and spans[-1][1] == end
    assert all((b - a).days <= 14 for a, b in spans)
    assert all(nxt[0] == prev[1] + timedelta(days=1) for prev, nxt in pairwise(spans))  # no gap, no overlap
    pages = Counter((r.query["start_date"], r.query["page"]) for r in records)
    assert set(pages.values()) == {1}  # each page once
    assert pages[(start.isoformat(), "5")] == 1  # 14 days x 30 ids = 420 ids -> 5 pages


def test_change_windows_helper():
    windows = list(iter_change_windows(date(2026, 1, 1), date(2026, 1, 31)))
    assert windows[0] == (date(2026, 1, 1), date(2026, 1, 14))
    assert windows[-1] == (date(2026, 1, 29), date(2026, 1, 31))
    assert all((b - a).days + 1 <= CHANGES_WINDOW_DAYS for a, b in windows)
    with pytest.raises(ValueError):
        list(iter_change_windows(date(2026, 1, 2), date(2026, 1, 1)))


def test_find_by_imdb():
    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        async def lookups(client: TMDbClient) -> list[int | None]:
            return [await client.find_by_imdb(x) for x in ("tt0000042", "0000042", "42", "tt9999999")]

        assert run(config(srv), lookups) == [42, 42, 42, None]
        assert {r.query["external_source"] for r in srv.snapshot()} == {"imdb_id"}
        assert {r.path for r in srv.snapshot()} == {"/3/find/tt0000042", "/3/find/tt9999999"}
    assert normalize_imdb_id(114709) == "tt0114709"
    assert normalize_imdb_id("tt10872600") == "tt10872600"
    with pytest.raises(ValueError):
        normalize_imdb_id("nm0000158")


def test_one_client_object_can_serve_two_event_loops():
    with FakeTMDb(movies=MOVIES, token=TOKEN) as srv:
        client = TMDbClient(config(srv))

        async def once(tmdb_id: int) -> str:
            async with client:
                results = await asyncio.gather(*(client.fetch_movie(tmdb_id + i) for i in range(3)))
                return "".join(r.outcome[0] for r in results)

        assert asyncio.run(once(1)) == "ooo"
        assert asyncio.run(once(10)) == "ooo"  # a fresh loop: the limiter must not reuse the old lock


def test_retry_after_parsing():
    from datetime import datetime
    from email.utils import format_datetime

    from movielens_assets.core.tmdb.client import MAX_RETRY_AFTER_S, _parse_retry_after

    assert _parse_retry_after(None) is None and _parse_retry_after("") is None and _parse_retry_after("soon") is None
    assert _parse_retry_after("0") == 0.0 and _parse_retry_after("2") == 2.0 and _parse_retry_after("-5") == 0.0
    assert _parse_retry_after("99999") == MAX_RETRY_AFTER_S
    in_10s = format_datetime(datetime.fromtimestamp(time.time() + 10, UTC), usegmt=True)
    assert 8 <= _parse_retry_after(in_10s) <= 10.5
