"""`movielens-rec`: recommendations from the materialized lake, on the command line and over HTTP.

    movielens-rec recommend --user 42 -k 10          a readable table (--json for the raw answer)
    movielens-rec recommend --liked 1,260,1196       an unknown visitor who likes these movies
    movielens-rec similar --movie "Toy Story" -k 10  title matched case-insensitively; ambiguous titles listed
    movielens-rec history --user 42
    movielens-rec serve --port 8000                  JSON endpoints + the page on http://127.0.0.1:8000/

Reads the pipeline's settings (`MOVIELENS_DATA_DIR`, `MOVIELENS_DATASET`, …; `--data-dir` overrides the first).
Exit status: 0 ok, 2 bad input (an unknown movie, an invalid id or k), 3 artifacts missing or from another run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_BAD_INPUT, EXIT_ARTIFACTS = 2, 3


def _load(args: argparse.Namespace):
    from movielens_assets.core.serving.recommender import Recommender
    from movielens_assets.settings import load_settings

    settings = load_settings()
    root = args.data_dir or settings.data_dir
    return Recommender.load(root, dataset=None if args.data_dir else settings.dataset)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[head for head, _ in columns]] + [[_cell(r.get(key)) for _, key in columns] for r in rows]
    widths = [min(max(len(row[i]) for row in cells), 48) for i in range(len(columns))]
    lines = ["  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


ITEM_COLUMNS = [("#", "rank"), ("movie", "movie_id"), ("title", "title"), ("genres", "genres"), ("score", "score"),
                ("proposed by", "channels")]


def format_recommend(answer: dict) -> str:
    who = f"user {answer['user']}" if answer["user"] is not None else "an anonymous visitor"
    how = {"ranked": "the UnifiedRanker's list (score = p(watch); movies already rated removed)",
           "history": "neighbours of the user's recent movies (no precomputed list)",
           "liked": "neighbours of the liked movies", "popularity": "the most popular movies (cold start)"}
    return f"Top {len(answer['items'])} for {who} — {how[answer['source']]}:\n" + _table(answer["items"], ITEM_COLUMNS)


def format_similar(answer: dict) -> str:
    m = answer["movie"]
    return (f"Movies similar to {m['title']} (movie {m['movie_id']}; ItemCF + semantic neighbours, fused):\n"
            + _table(answer["items"], ITEM_COLUMNS))


def format_history(answer: dict) -> str:
    rows = [{**r, "rating": f"{r['rating']:.1f}"} for r in answer["items"]]
    return (f"User {answer['user']}: {answer['ratings']} ratings, the latest {len(answer['items'])}:\n"
            + _table(rows, [("movie", "movie_id"), ("title", "title"), ("rating", "rating")]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="movielens-rec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="the lake root (default: MOVIELENS_DATA_DIR, else data/)")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recommend", help="top-k movies for a user (or for liked movie ids)")
    rec.add_argument("--user", help="a MovieLens user id")
    rec.add_argument("--liked", default="", help="comma-separated movie ids the visitor likes (cold start)")
    rec.add_argument("-k", default="10", help="how many (1..200, default 10)")
    rec.add_argument("--json", action="store_true", help="print the JSON answer")
    sim = sub.add_parser("similar", help="movies similar to a movie (id or title)")
    sim.add_argument("--movie", required=True, help="a movie id or (part of) a title, case-insensitive")
    sim.add_argument("-k", default="10")
    sim.add_argument("--json", action="store_true")
    hist = sub.add_parser("history", help="a user's most recent ratings")
    hist.add_argument("--user", required=True)
    hist.add_argument("-n", default="20")
    hist.add_argument("--json", action="store_true")
    srv = sub.add_parser("serve", help="the HTTP service and its page")
    srv.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    from movielens_assets.core.serving.artifacts import ArtifactMissing, ServingError

    try:
        if args.command == "recommend" and not args.user and not args.liked:
            raise SystemExit("movielens-rec recommend: give --user ID or --liked ID,ID,...")
        recommender = _load(args)
        if args.command == "serve":
            from movielens_assets.core.serving.http import serve

            serve(recommender, args.host, args.port)
            return 0
        if args.command == "recommend":
            liked = [p.strip() for p in args.liked.split(",") if p.strip()]
            answer, show = recommender.recommend(args.user, args.k, liked), format_recommend
        elif args.command == "similar":
            answer, show = recommender.similar(args.movie, args.k), format_similar
        else:
            answer, show = recommender.history(args.user, args.n), format_history
    except ArtifactMissing as exc:
        print(f"movielens-rec: {exc}", file=sys.stderr)
        return EXIT_ARTIFACTS
    except ServingError as exc:
        print(f"movielens-rec: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        print(show(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
