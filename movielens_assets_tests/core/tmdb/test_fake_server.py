"""The fake TMDb server answers like the real one (reference: /work/shared/reference/tmdb-api.md §1, §3, §8)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import date, timedelta

import aiohttp
import pytest

from movielens_assets_tests.servers.tmdb_fake import FakeTMDb, RequestRecord, make_movies

TOKEN = "eyJhbGciOiJIUzI1NiJ9.fake-read-access-token.c2lnbmF0dXJl"
API_KEY = "0123456789abcdef0123456789abcdef"
MOVIES = make_movies(range(1, 21))
APPEND = "credits,keywords,release_dates"


def get(srv: FakeTMDb, path: str, params: dict | None = None, *, bearer: str | None = TOKEN, timeout: float = 5.0):
    """(status, headers, raw body) for GET base_url + path; HTTP errors are returned, not raised."""
    url = srv.base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def envelope(raw: bytes) -> dict:
    body = json.loads(raw)
    assert body["success"] is False
    return body


@pytest.fixture(scope="module")
def srv():
    with FakeTMDb(movies=MOVIES, token=TOKEN, api_key=API_KEY) as server:
        yield server


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bearer", "params"),
    [
        (None, None),  # no credential at all
        ("not-the-token", None),  # wrong bearer token
        (API_KEY, None),  # a v3 key sent as Bearer fails loudly
        (None, {"api_key": "ffffffffffffffffffffffffffffffff"}),  # wrong api_key
    ],
)
def test_bad_or_missing_credentials_get_401_code_7(srv, bearer, params):
    status, headers, raw = get(srv, "/movie/1", params, bearer=bearer)
    assert status == 401
    assert json.loads(raw) == {
        "status_code": 7,
        "status_message": "Invalid API key: You must be granted a valid key.",
        "success": False,
    }
    assert list(json.loads(raw)) == ["status_code", "status_message", "success"]  # live key order
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Content-Type"] == "application/json;charset=utf-8"


def test_bearer_and_api_key_are_both_accepted_and_recorded(srv):
    srv.reset_log()
    assert get(srv, "/movie/1")[0] == 200
    assert get(srv, "/movie/1", {"api_key": API_KEY}, bearer=None)[0] == 200
    first, second = srv.snapshot()
    assert (first.auth, second.auth) == ("bearer", "api_key")
    assert second.query["api_key"] == "***"  # the log never keeps the key


# -- /movie/{id} --------------------------------------------------------------------------------


def test_movie_success_headers(srv):
    status, headers, raw = get(srv, "/movie/3", {"append_to_response": APPEND, "language": "en-US"})
    assert status == 200
    assert headers["Content-Type"] == "application/json;charset=utf-8"
    assert headers["Cache-Control"].startswith("public, max-age=")
    assert headers["ETag"].startswith('W/"')
    assert not [h for h in headers if h.lower().startswith("x-ratelimit")]
    assert json.loads(raw)["id"] == 3


def test_append_to_response_only_requested_blocks_without_ids(srv):
    plain = json.loads(get(srv, "/movie/2")[2])
    assert not {"credits", "keywords", "release_dates"} & set(plain)
    assert plain["title"] == "Movie 2" and plain["imdb_id"] == "tt0000002"

    some = json.loads(get(srv, "/movie/2", {"append_to_response": "credits,not_a_namespace,videos"})[2])
    assert "credits" in some and "keywords" not in some and "not_a_namespace" not in some
    assert "videos" not in some  # requested but the movie has none: silently absent
    assert "id" not in some["credits"] and {"cast", "crew"} <= set(some["credits"])

    full = json.loads(get(srv, "/movie/2", {"append_to_response": APPEND})[2])
    assert full["keywords"]["keywords"] and full["release_dates"]["results"]
    assert "id" not in full["keywords"] and "id" not in full["release_dates"]


def test_more_than_20_appends_is_400_code_27(srv):
    names = ",".join(f"x{i}" for i in range(20))
    assert get(srv, "/movie/1", {"append_to_response": names})[0] == 200
    status, _, raw = get(srv, "/movie/1", {"append_to_response": names + ",credits"})
    assert status == 400 and envelope(raw)["status_code"] == 27
    assert envelope(raw)["status_message"].startswith("Too many append to response objects")


def test_unknown_movie_and_unknown_path_are_404_code_34(srv):
    for path in ("/movie/999999", "/no/such/endpoint"):
        status, headers, raw = get(srv, path)
        assert status == 404
        assert envelope(raw) == {
            "success": False,
            "status_code": 34,
            "status_message": "The resource you requested could not be found.",
        }
    status, headers, _ = get(srv, "/movie/999999")
    assert "Cache-Control" not in headers and "ETag" not in headers


# -- /movie/changes -----------------------------------------------------------------------------


def test_changes_pagination_windows_and_errors():
    day0 = date(2026, 3, 1)
    changes = {1000 + i: day0 + timedelta(days=i % 10) for i in range(250)}
    changes[1] = [day0 - timedelta(days=30), day0 + timedelta(days=3)]  # a known movie, two change dates
    changes[5] = day0 - timedelta(days=30)  # outside the window below
    with FakeTMDb(movies=MOVIES, token=TOKEN, changes=changes, today=day0 + timedelta(days=9)) as srv:
        window = {"start_date": day0.isoformat(), "end_date": (day0 + timedelta(days=9)).isoformat()}
        pages = []
        for page in (1, 2, 3):
            status, _, raw = get(srv, "/movie/changes", {**window, "page": page})
            assert status == 200
            pages.append(json.loads(raw))
        assert [len(p["results"]) for p in pages] == [100, 100, 51]
        assert all(p["total_pages"] == 3 and p["total_results"] == 251 for p in pages)
        assert list(pages[0]) == ["results", "page", "total_pages", "total_results"]
        ids = [r["id"] for p in pages for r in p["results"]]
        assert len(ids) == len(set(ids)) == 251 and 1 in ids and 5 not in ids
        adult = {r["id"]: r["adult"] for p in pages for r in p["results"]}
        assert adult[1] is False and adult[1000] is None  # unknown movies: adult null, as in the OAS example

        # past the last page: empty results; 14 days apart is allowed, 15 is 422 / 20
        assert json.loads(get(srv, "/movie/changes", {**window, "page": 4})[2])["results"] == []
        ok = {"start_date": "2026-03-01", "end_date": "2026-03-15"}
        assert get(srv, "/movie/changes", ok)[0] == 200
        status, _, raw = get(srv, "/movie/changes", {"start_date": "2026-03-01", "end_date": "2026-03-16"})
        assert status == 422 and envelope(raw)["status_code"] == 20
        assert envelope(raw)["status_message"] == "Invalid date range: Should be a range no longer than 14 days."
        status, _, raw = get(srv, "/movie/changes", {"start_date": "03/01/2026"})
        assert status == 400 and envelope(raw)["status_code"] == 23
        status, _, raw = get(srv, "/movie/changes", {"page": "zero"})
        assert status == 400 and envelope(raw)["status_code"] == 22
        status, _, raw = get(srv, "/movie/changes", {"page": 501})
        assert status == 422 and json.loads(raw) == {"errors": ["page must be less than or equal to 500"]}

        # no dates: the last 24 hours (today - 1 .. today)
        default = json.loads(get(srv, "/movie/changes")[2])
        expected = sorted(i for i, d in changes.items() if not isinstance(d, list) and d >= day0 + timedelta(days=8))
        assert sorted(r["id"] for r in default["results"]) == expected


# -- /find --------------------------------------------------------------------------------------


def test_find_by_imdb_hit_miss_and_missing_source(srv):
    status, _, raw = get(srv, "/find/tt0000007", {"external_source": "imdb_id"})
    body = json.loads(raw)
    assert status == 200
    assert set(body) == {"movie_results", "person_results", "tv_results", "tv_episode_results", "tv_season_results"}
    assert body["movie_results"][0]["id"] == 7 and body["movie_results"][0]["media_type"] == "movie"
    miss = json.loads(get(srv, "/find/tt9999999", {"external_source": "imdb_id"})[2])
    assert all(v == [] for v in miss.values())
    status, _, raw = get(srv, "/find/tt0000007")
    assert status == 422 and envelope(raw)["status_code"] == 5


# -- rate limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "header"), [(3, "3"), (0, "0"), (None, None)])
def test_token_bucket_429_code_25_with_each_retry_after_mode(retry_after, header):
    with FakeTMDb(movies=MOVIES, token=TOKEN, rate_limit_per_s=2, rate_burst=2, retry_after=retry_after) as srv:
        answers = [get(srv, "/movie/1") for _ in range(4)]
        assert [a[0] for a in answers] == [200, 200, 429, 429]
        status, headers, raw = answers[2]
        assert envelope(raw) == {
            "success": False,
            "status_code": 25,
            "status_message": "Your request count (#) is over the allowed limit of (40).",
        }
        assert headers.get("Retry-After") == header
        assert headers["X-Cache"] == "Error from cloudfront"
        time.sleep(0.6)  # refills one token at 2/s
        assert get(srv, "/movie/1")[0] == 200


# -- faults -------------------------------------------------------------------------------------


def test_scripted_faults_per_id_then_normal():
    script = {1: ["503", "502", "504", "500", "ok"], 2: ["502html"], 3: ["malformed"], 4: ["reset"], 5: ["404"]}
    with FakeTMDb(movies=MOVIES, token=TOKEN, script=script) as srv:
        statuses = [get(srv, "/movie/1")[0] for _ in range(6)]
        assert statuses == [503, 502, 504, 500, 200, 200]
        five = [r for r in srv.snapshot() if r.tmdb_id == 1][:4]
        assert [r.fault for r in five] == ["503", "502", "504", "500"]

        status, headers, raw = get(srv, "/movie/2")
        assert status == 502 and raw.startswith(b"<!DOCTYPE HTML") and headers["Content-Type"].startswith("text/html")

        status, _, raw = get(srv, "/movie/3")
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)

        with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            get(srv, "/movie/4")
        assert get(srv, "/movie/4")[0] == 200  # next attempt is fine

        assert get(srv, "/movie/5")[0] == 404

        records = {(r.tmdb_id, r.fault): r for r in srv.snapshot()}
        assert records[(4, "reset")].status == 0 and not records[(4, "reset")].delivered
        assert not records[(3, "malformed")].successful
        assert srv.successful_fetches() == Counter({1: 2, 4: 1})  # faults and 404s are not successes


def test_envelopes_for_5xx_faults():
    with FakeTMDb(movies=MOVIES, token=TOKEN, script={1: ["502", "503", "504"]}) as srv:
        bodies = [envelope(get(srv, "/movie/1")[2]) for _ in range(3)]
    assert [(b["status_code"], b["status_message"]) for b in bodies] == [
        (43, "Couldn't connect to the backend server."),
        (9, "Service offline: This service is temporarily offline, try again later."),
        (24, "Your request to the backend server timed out. Try again."),
    ]


def test_latency_and_slow_responses():
    with FakeTMDb(movies=MOVIES, token=TOKEN, latency_s=0.05, slow_s=0.3, script={2: ["slow"]}) as srv:
        t0 = time.monotonic()
        assert get(srv, "/movie/1")[0] == 200
        t1 = time.monotonic()
        assert get(srv, "/movie/2")[0] == 200
        t2 = time.monotonic()
    assert 0.05 <= t1 - t0 < 0.3
    assert t2 - t1 >= 0.35
    with FakeTMDb(movies=MOVIES, token=TOKEN, script={2: ["slow"]}, slow_s=2.0) as srv:
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            get(srv, "/movie/2", timeout=0.2)
        time.sleep(0.1)
        (record,) = srv.snapshot()
        assert not record.delivered and not record.successful  # the client never got that answer


def _fault_pattern(seed: int) -> list[tuple[int, int]]:
    with FakeTMDb(movies=make_movies(range(1, 201)), token=TOKEN, fault_rate=0.05, seed=seed,
                  fault_mix=("502", "503", "504", "malformed")) as srv:
        for i in range(1, 201):
            get(srv, f"/movie/{i}")
        return [(r.tmdb_id, r.status) for r in srv.snapshot() if r.fault]


def test_probability_faults_are_deterministic_per_seed():
    a, b, c = _fault_pattern(7), _fault_pattern(7), _fault_pattern(8)
    assert a == b
    assert a != c
    assert 2 <= len(a) <= 25  # ~5 % of 200


def test_injected_faults_apply_to_the_next_requests(srv):
    srv.reset_log()
    srv.inject("429", "500")
    assert [get(srv, "/movie/1")[0] for _ in range(3)] == [429, 500, 200]


def test_max_in_window_counts_half_open_windows():
    def rec(t: float) -> RequestRecord:
        return RequestRecord(0, t, "GET", "/3/movie/1", {}, "bearer")

    srv = FakeTMDb(token=TOKEN)
    assert srv.max_in_window(1.0, records=[rec(t) for t in (0.0, 0.5, 1.0)]) == 2  # 1.0 is outside [0, 1)
    assert srv.max_in_window(1.0, records=[rec(t) for t in (0.0, 0.5, 0.999)]) == 3
    records = [rec(t) for t in (1.1, 0.0, 0.2, 0.5, 0.99, 1.0)]  # unsorted on purpose
    assert srv.max_in_window(1.0, records=records) == 5  # [0.2, 1.2)
    assert srv.max_in_window(0.1, records=records) == 2  # 0.99 and 1.0
    assert srv.max_in_window(1.0, records=[]) == 0


def test_usable_inside_a_running_loop_with_max_in_flight():
    async def main() -> tuple[list[int], int]:
        async with FakeTMDb(movies=MOVIES, token=TOKEN, latency_s=0.05) as srv:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:

                async def one(i: int) -> int:
                    async with session.get(f"{srv.base_url}/movie/{i}") as resp:
                        await resp.read()
                        return resp.status

                statuses = await asyncio.gather(*(one(i) for i in range(1, 11)))
            return statuses, srv.max_in_flight

    statuses, in_flight = asyncio.run(main())
    assert statuses == [200] * 10
    assert in_flight > 1
