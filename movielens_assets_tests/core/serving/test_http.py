"""The aiohttp service in process (aiohttp's test server on 127.0.0.1): JSON answers, every kind of bad request
answered with a 4xx JSON message, an unexpected error answered with a 500 JSON, and the service still serving."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from movielens_assets.core.serving.http import make_app
from movielens_assets.core.serving.recommender import Recommender


@pytest.fixture(scope="module")
def rec(served_lake) -> Recommender:
    return Recommender.load(served_lake.data_dir, dataset="synthetic-tiny")


def _run(rec: Recommender, requests: list[str]) -> list[tuple[int, str, object]]:
    """GET each path in order against one server; (status, content type, JSON body or text)."""

    async def go():
        async with TestClient(TestServer(make_app(rec), host="127.0.0.1")) as client:
            out = []
            for path in requests:
                resp = await client.get(path)
                body = await (resp.json() if resp.content_type == "application/json" else resp.text())
                out.append((resp.status, resp.content_type, body))
            return out

    return asyncio.run(go())


def test_endpoints_answer_json(rec):
    user = int(rec._ranked.keys[0])
    movie = int(rec.ids.item_ids[0])
    (h, r, s, hist, page) = _run(rec, ["/healthz", f"/recommend?user={user}&k=7", f"/similar?movie={movie}&k=4",
                                       f"/history?user={user}&n=3", "/"])
    assert h[0] == 200 and h[2]["status"] == "ok" and h[2]["dataset"] == "synthetic-tiny"
    assert r[0] == 200 and r[1] == "application/json" and r[2] == rec.recommend(user, 7)
    assert s[0] == 200 and len(s[2]["items"]) == 4 and s[2]["movie"]["movie_id"] == movie
    assert hist[0] == 200 and len(hist[2]["items"]) == 3
    assert page[0] == 200 and page[1] == "text/html" and 'id="recommendations"' in page[2]
    title = rec.movie(movie)["title"]
    ((status, _, body),) = _run(rec, [f"/similar?title={title.lower()}&k=3"])
    assert status == 200 and body["movie"]["movie_id"] == movie
    ((status, _, body),) = _run(rec, [f"/recommend?liked={movie},{int(rec.ids.item_ids[1])}&k=5"])
    assert status == 200 and body["source"] == "liked" and len(body["items"]) == 5


BAD = [
    ("/recommend", 400, "`user`"),
    ("/recommend?user=", 400, "`user`"),
    ("/recommend?user=abc", 400, "positive integer"),
    ("/recommend?user=-4", 400, "positive integer"),
    ("/recommend?user=0", 400, "positive integer"),
    ("/recommend?user=1.5", 400, "positive integer"),
    ("/recommend?user=99999999999999999999", 400, "positive integer"),
    ("/recommend?user=1&k=0", 400, "k must be an integer in 1..200"),
    ("/recommend?user=1&k=201", 400, "k must be an integer in 1..200"),
    ("/recommend?user=1&k=ten", 400, "k must be an integer in 1..200"),
    ("/recommend?liked=1,x", 400, "liked must be a positive integer"),
    ("/recommend?liked=999999999", 404, "not in movies.parquet"),
    ("/similar", 400, "`movie`"),
    ("/similar?movie=-1", 400, "positive integer"),
    ("/similar?movie=abc", 400, "positive integer"),
    ("/similar?movie=999999999", 404, "not in movies.parquet"),
    ("/similar?title=zzzz%20no%20such%20film", 404, "no movie title matches"),
    ("/similar?movie=1&k=500", 400, "k must be an integer"),
    ("/history", 400, "`user`"),
    ("/history?user=x", 400, "positive integer"),
    ("/nope", 404, "Not Found"),
]


def test_bad_requests_get_a_4xx_json_message_and_the_server_keeps_serving(rec):
    answers = _run(rec, [path for path, _, _ in BAD] + ["/healthz"])
    for (path, status, message), (got, ctype, body) in zip(BAD, answers, strict=False):
        assert (got, ctype) == (status, "application/json"), (path, got, body)
        assert message in body["error"], (path, body)
    assert answers[-1][0] == 200 and answers[-1][2]["status"] == "ok"


def test_an_ambiguous_title_lists_the_candidates(rec):
    from collections import Counter

    from movielens_assets.core.serving.recommender import _strip_year

    names = Counter(_strip_year(t).casefold() for t in rec.titles)
    word = next((n for n, c in names.items() if c > 1), "the")
    ((status, _, body),) = _run(rec, [f"/similar?title={word}"])
    assert status == 400 and len(body["candidates"]) > 1 and "movies match" in body["error"]


def test_an_unexpected_error_is_a_500_json_and_the_next_request_succeeds(rec, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(rec, "similar", broken)
    (err, ok) = _run(rec, ["/similar?movie=1", "/healthz"])
    assert err[0] == 500 and "internal error" in err[2]["error"] and "boom" not in err[2]["error"]
    assert ok[0] == 200
