"""The HTTP service (aiohttp): JSON endpoints over one loaded `Recommender`, and a small HTML page.

    GET /recommend?user=42&k=10            the user's list (unknown users: popularity, or `&liked=1,2,3`)
    GET /recommend?liked=1,2,3&k=10        an anonymous visitor's list from movies they like
    GET /similar?movie=1&k=10              item-to-item neighbours (`movie` = an id, or `title=Toy Story`)
    GET /history?user=42&n=20              the user's most recent ratings
    GET /healthz                           status, dataset, sizes
    GET /                                  the page (page.html: plain HTML + fetch, no build step)

Bad input (missing / non-numeric / non-positive ids, `k` outside 1..200, an unknown or ambiguous movie) is a 4xx
JSON `{"error": ...}`; an unexpected exception is a 500 JSON and is logged; the server keeps serving either way.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from movielens_assets.core.serving.artifacts import ServingError
from movielens_assets.core.serving.recommender import BadRequest, Recommender, check_id

log = logging.getLogger("movielens_rec.serving")
RECOMMENDER: web.AppKey[Recommender] = web.AppKey("recommender", Recommender)
PAGE: web.AppKey[str] = web.AppKey("page", str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServingError as exc:
        body: dict[str, Any] = {"error": str(exc)}
        if getattr(exc, "candidates", None):
            body["candidates"] = exc.candidates  # type: ignore[attr-defined]
        return _json(body, exc.status)
    except web.HTTPException as exc:  # unknown route, wrong method
        return _json({"error": f"{exc.reason}: {request.method} {request.path}"}, exc.status)
    except Exception:  # noqa: BLE001 — one bad request must never take the service down
        log.exception("unexpected error on %s", request.path_qs)
        return _json({"error": "internal error (logged on the server)"}, 500)


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None or not value.strip():
        raise BadRequest(f"query parameter `{name}` is required")
    return value


def _liked(request: web.Request) -> list[str]:
    raw = request.query.get("liked", "")
    return [part for part in (p.strip() for p in raw.split(",")) if part]


async def recommend(request: web.Request) -> web.Response:
    rec, query = request.app[RECOMMENDER], request.query
    user, liked = query.get("user"), _liked(request)
    if (user is None or not user.strip()) and not liked:
        raise BadRequest("query parameter `user` (a user id) or `liked` (movie ids, comma-separated) is required")
    return _json(rec.recommend(user if user and user.strip() else None, query.get("k", "10"), liked))


async def similar(request: web.Request) -> web.Response:
    rec, query = request.app[RECOMMENDER], request.query
    movie = query.get("movie") or query.get("title")
    if movie is None or not movie.strip():
        raise BadRequest("query parameter `movie` (an id) or `title` is required")
    if "movie" in query and "title" not in query and not movie.strip().isdigit():
        check_id(movie, "movie")  # `movie=` is an id: "-3" or "abc" is a 400, not a title search
    return _json(rec.similar(movie, query.get("k", "10")))


async def history(request: web.Request) -> web.Response:
    rec = request.app[RECOMMENDER]
    return _json(rec.history(_required(request, "user"), request.query.get("n", "20")))


async def healthz(request: web.Request) -> web.Response:
    return _json(request.app[RECOMMENDER].health())


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE], content_type="text/html")


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def make_app(recommender: Recommender) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[RECOMMENDER] = recommender
    app[PAGE] = resources.files("movielens_assets.core.serving").joinpath("page.html").read_text(encoding="utf-8")
    app.add_routes([web.get("/", page), web.get("/recommend", recommend), web.get("/similar", similar),
                    web.get("/history", history), web.get("/healthz", healthz),
                    web.get("/favicon.ico", no_icon)])
    return app


def serve(recommender: Recommender, host: str = "127.0.0.1", port: int = 8000, announce=print) -> None:
    """Run the service until interrupted (no access log: it costs ~20% of the throughput). The loaded state is
    moved out of the garbage collector's reach (`gc.freeze`): its objects never change, and scanning them made
    the slowest requests slower."""
    import gc

    gc.collect()
    gc.freeze()
    announce(f"serving {recommender.dataset} on http://{host}:{port}/ (Ctrl-C stops)")
    web.run_app(make_app(recommender), host=host, port=port, access_log=None, print=None)
