"""`Recommender`: the materialized artifacts loaded once, answering `recommend`, `similar` and `history` in well
under a millisecond of numpy work per call (docs/SERVING.md).

- Known users with a final list (every evaluated user): the ranker's precomputed list (`ranked.parquet`), minus
  every movie they rated (the list was computed before their last 3 ratings, which it may contain), topped up from
  the fallbacks below when `k` exceeds what is left.
- Users with ratings but no list (too few ratings to be evaluated): neighbours of their most recent movies.
- Unknown users: neighbours of the `liked` movie ids given in the request, else the most popular movies.
- Neighbours (`similar`, and the two fallbacks): the ItemCF and semantic channels' stored item-item neighbours
  (the test stage's fitted channels), fused by reciprocal rank (k=60) with equal weights; a movie without
  ratings in the training split gets semantic neighbours from its embedding when `item_embeddings` exist.

Every item comes with title, year, genres, a score and the channels that proposed it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from movielens_assets.core.serving.artifacts import ServingError, ServingPaths, check_artifacts

MAX_K = 200
RRF_K = 60.0
NEIGHBOUR_CHANNELS = ("itemcf", "semantic")
RECENT = 20
"""Most recent movies of a user (or liked ids) used as queries by the neighbour fallback."""
RECENCY_DECAY = 0.9


class BadRequest(ServingError):
    status = 400


class UnknownMovie(ServingError):
    status = 404


class AmbiguousTitle(ServingError):
    status = 400

    def __init__(self, query: str, candidates: list[dict], total: int):
        self.candidates = candidates
        listed = "; ".join(f"{c['movie_id']}: {c['title']}" for c in candidates)
        shown = "" if total == len(candidates) else f" (the {len(candidates)} most popular)"
        super().__init__(f"{total} movies match {query!r}{shown}: {listed} — give the movie id or the full title")


def check_k(k: Any) -> int:
    """`k` as an int in 1..MAX_K (an int, or a string of digits), else `BadRequest`."""
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        value = int(k)
    elif isinstance(k, str) and re.fullmatch(r"\s*\d+\s*", k):
        value = int(k)
    else:
        raise BadRequest(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    if not 1 <= value <= MAX_K:
        raise BadRequest(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    return value


def check_id(value: Any, name: str) -> int:
    """A MovieLens id: a positive integer (as in every release), else `BadRequest` naming the field."""
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a positive integer id, got {value!r}")
    if isinstance(value, (int, np.integer)):
        parsed = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        parsed = int(value)
    else:
        raise BadRequest(f"{name} must be a positive integer id, got {value!r}")
    if parsed <= 0 or parsed > np.iinfo(np.int32).max:
        raise BadRequest(f"{name} must be a positive integer id (1..{np.iinfo(np.int32).max}), got {value!r}")
    return parsed


@dataclass(frozen=True)
class _Csr:
    """Rows grouped by a sorted key: `keys` unique sorted, rows of key i at indptr[i]:indptr[i+1]."""

    keys: np.ndarray
    indptr: np.ndarray

    @classmethod
    def from_sorted(cls, sorted_keys: np.ndarray) -> _Csr:
        keys, starts = np.unique(sorted_keys, return_index=True)
        return cls(keys, np.append(starts, sorted_keys.size).astype(np.int64))

    def lengths(self, keys: np.ndarray) -> np.ndarray:
        """Rows per key (0 for absent keys)."""
        keys = np.asarray(keys)
        i = np.minimum(np.searchsorted(self.keys, keys), max(self.keys.size - 1, 0))
        found = self.keys[i] == keys if self.keys.size else np.zeros(keys.shape, bool)
        return np.where(found, np.diff(self.indptr)[i] if self.keys.size else 0, 0)

    def span(self, key: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.keys, key))
        if i < self.keys.size and self.keys[i] == key:
            return int(self.indptr[i]), int(self.indptr[i + 1])
        return 0, 0


class Recommender:
    """Loaded serving state; thread-safe for reads (nothing mutates after `load` but a lazy embedding cache)."""

    def __init__(self, paths: ServingPaths, dataset: str | None = None):
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from movielens_assets.core.ranking.sequences import SequenceStore
        from movielens_assets.core.recall.base import IdMap

        start = time.perf_counter()
        self.paths = paths
        self.trained_on = check_artifacts(paths, dataset)
        self.dataset = self.trained_on.get("dataset", dataset)
        movies = pq.read_table(paths.movies, columns=["movie_id", "title", "year", "genres"]).sort_by("movie_id")
        self.movie_ids = movies["movie_id"].to_numpy().astype(np.int64)
        self.titles: list[str] = movies["title"].to_pylist()
        self.years: list[int | None] = movies["year"].to_pylist()
        self.genres: list[list[str]] = movies["genres"].to_pylist()
        self._by_title: dict[str, list[int]] = {}
        self._by_name: dict[str, list[int]] = {}  # title without its trailing "(year)"
        for row, title in enumerate(self.titles):
            self._by_title.setdefault(title.casefold(), []).append(row)
            self._by_name.setdefault(_strip_year(title).casefold(), []).append(row)

        self.ids = IdMap.load(paths.ids)
        self.store = SequenceStore.load(paths.sequences)
        test = pq.read_table(paths.test_rows, columns=["user_id", "movie_id", "rating", "timestamp"]
                             ).sort_by([("user_id", "ascending"), ("timestamp", "ascending")])
        self._test = _Csr.from_sorted(test["user_id"].to_numpy())
        self._test_movie = test["movie_id"].to_numpy().astype(np.int64)
        self._test_rating = test["rating"].to_numpy().astype(np.float32)
        self._test_ts = test["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)  # seconds, as the store

        ranked = pq.read_table(paths.ranked, columns=["user_id", "movie_id", "rank", "channels", "p_watch"])
        users, rank = ranked["user_id"].to_numpy(), ranked["rank"].to_numpy()
        order = None if _sorted_by(users, rank) else np.lexsort((rank, users))
        take = (lambda a: a) if order is None else (lambda a: a[order])  # noqa: E731
        self._ranked = _Csr.from_sorted(take(users.astype(np.int64)))
        self._ranked_movie = take(ranked["movie_id"].to_numpy().astype(np.int64))
        self._ranked_score = take(ranked["p_watch"].to_numpy().astype(np.float32))
        codes = pc.list_flatten(ranked["channels"]).dictionary_encode().combine_chunks()
        self.channel_names: list[str] = codes.dictionary.to_pylist()
        mask = np.zeros(ranked.num_rows, dtype=np.int64)
        np.bitwise_or.at(mask, pc.list_parent_indices(ranked["channels"]).to_numpy(),
                         np.left_shift(1, codes.indices.to_numpy().astype(np.int64)))
        self._ranked_channels = take(mask)

        self.popularity = np.load(paths.channel("popularity") / "scores.npy", mmap_mode="r")
        self._popular = np.argsort(-np.asarray(self.popularity), kind="stable")[: MAX_K * 4]
        self.neighbours = {
            "itemcf": (np.load(paths.channel("itemcf") / "neighbors.npy", mmap_mode="r"),
                       np.load(paths.channel("itemcf") / "similarities.npy", mmap_mode="r")),
            "semantic": (np.load(paths.channel("semantic") / "neighbours.npy", mmap_mode="r"),
                         np.load(paths.channel("semantic") / "similarities.npy", mmap_mode="r")),
        }
        self._cold_vectors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.load_seconds = time.perf_counter() - start

    @classmethod
    def load(cls, root: str | Path, dataset: str | None = None) -> Recommender:
        """Load the lake at `root`; `dataset` (e.g. `MOVIELENS_DATASET`) must match the one the lists came from."""
        return cls(ServingPaths(Path(root)), dataset)

    # ------------------------------------------------------------------------------------------------ look-ups
    def _row(self, movie_id: int) -> int:
        i = int(np.searchsorted(self.movie_ids, movie_id))
        return i if i < self.movie_ids.size and self.movie_ids[i] == movie_id else -1

    def movie(self, movie_id: int) -> dict[str, Any]:
        row = self._row(movie_id)
        if row < 0:
            raise UnknownMovie(f"movie {movie_id} is not in movies.parquet")
        return self._movie_at(row)

    def _movie_at(self, row: int) -> dict[str, Any]:
        return {"movie_id": int(self.movie_ids[row]), "title": self.titles[row], "year": self.years[row],
                "genres": self.genres[row]}

    def _movie_or_bare(self, movie_id: int) -> dict[str, Any]:
        """`movie(movie_id)`, or the bare id when movies.parquet lacks it (a rated or listed id is never an error)."""
        row = self._row(movie_id)
        return self._movie_at(row) if row >= 0 else {"movie_id": movie_id, "title": None, "year": None, "genres": []}

    def find_movie(self, query: int | str) -> int:
        """A movie id from an id, or from a title matched case-insensitively: the exact title, else the title
        without its year, else a unique substring. Several matches -> `AmbiguousTitle` listing them."""
        if isinstance(query, (int, np.integer)) or (isinstance(query, str) and query.strip().isdigit()):
            movie_id = check_id(query, "movie")
            self.movie(movie_id)
            return movie_id
        text = str(query).strip()
        if not text:
            raise BadRequest("movie must be an id or a (part of a) title, got an empty string")
        key = text.casefold()
        rows = self._by_title.get(key) or self._by_name.get(key)
        if rows is None:
            rows = [r for r, t in enumerate(self.titles) if key in t.casefold()]
        if not rows:
            raise UnknownMovie(f"no movie title matches {text!r}")
        if len(rows) > 1:
            shown = sorted(rows, key=lambda r: -self._pop_of(int(self.movie_ids[r])))[:20]
            raise AmbiguousTitle(text, [self._movie_at(r) for r in shown], len(rows))
        return int(self.movie_ids[rows[0]])

    def _pop_of(self, movie_id: int) -> float:
        idx = int(self.ids.item_index(np.array([movie_id]))[0])
        return float(self.popularity[idx]) if idx >= 0 else 0.0

    def _user_rows(self, user_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(movie_id, rating, timestamp) of every rating of the user, oldest first (training history + test rows)."""
        pos = int(self.store.user_index(np.array([user_id]))[0])
        a, b = (int(self.store.indptr[pos]), int(self.store.indptr[pos + 1])) if pos >= 0 else (0, 0)
        c, d = self._test.span(user_id)
        return (np.concatenate([self.store.movie_id[a:b].astype(np.int64), self._test_movie[c:d]]),
                np.concatenate([self.store.rating[a:b], self._test_rating[c:d]]),
                np.concatenate([self.store.ts[a:b], self._test_ts[c:d]]))

    def history(self, user_id: Any, n: Any = 20) -> dict[str, Any]:
        """The user's `n` most recent ratings, newest first."""
        uid, n = check_id(user_id, "user"), check_k(n)
        movies, ratings, ts = self._user_rows(uid)
        items = []
        for m, r, t in zip(movies[::-1][:n].tolist(), ratings[::-1][:n].tolist(), ts[::-1][:n].tolist(), strict=True):
            items.append({**self._movie_or_bare(m), "rating": r, "timestamp": t})
        return {"user": uid, "known": bool(movies.size), "ratings": int(movies.size), "items": items}

    # ------------------------------------------------------------------------------------------------ recommend
    def recommend(self, user_id: Any = None, k: Any = 10, liked: Iterable[Any] = ()) -> dict[str, Any]:
        """Top-`k` movies for `user_id` (or, for an unknown user, from `liked` movie ids), with their reasons."""
        k = check_k(k)
        uid = None if user_id is None else check_id(user_id, "user")
        liked_ids = [check_id(m, "liked") for m in liked]
        for m in liked_ids:
            self.movie(m)
        seen: set[int] = set(liked_ids)
        queries: list[int] = list(reversed(liked_ids))  # the last given first: weighted most
        picked: list[dict[str, Any]] = []
        source = "popularity"
        rated = 0
        if uid is not None:
            movies, _, _ = self._user_rows(uid)
            rated = int(movies.size)
            seen.update(movies.tolist())
            queries = movies[::-1][:RECENT].tolist() + queries
            a, b = self._ranked.span(uid)
            if b > a:
                source = "ranked"
                for j in range(a, b):
                    m = int(self._ranked_movie[j])
                    if m not in seen and len(picked) < k:
                        picked.append(self._item(m, float(self._ranked_score[j]),
                                                 self._channels_of(int(self._ranked_channels[j])), "unified_ranker"))
        if len(picked) < k and queries:
            fused = self._neighbours_of(queries[:RECENT], exclude=seen | {p["movie_id"] for p in picked}, k=k)
            if fused and source == "popularity":
                source = "history" if uid is not None and len(queries) > len(liked_ids) else "liked"
            picked += fused[: k - len(picked)]
        if len(picked) < k:
            taken = seen | {p["movie_id"] for p in picked}
            for idx in self._popular:
                m = int(self.ids.item_ids[idx])
                if m not in taken:
                    picked.append(self._item(m, float(self.popularity[idx]), ["popularity"], "popularity"))
                    if len(picked) == k:
                        break
        return {"user": uid, "source": source, "known": rated > 0,
                "k": k, "items": [{"rank": i + 1, **p} for i, p in enumerate(picked)]}

    def _channels_of(self, mask: int) -> list[str]:
        return [name for bit, name in enumerate(self.channel_names) if mask >> bit & 1]

    def _item(self, movie_id: int, score: float, channels: list[str], scorer: str) -> dict[str, Any]:
        return {**self._movie_or_bare(movie_id), "score": round(score, 6), "scored_by": scorer, "channels": channels}

    # ------------------------------------------------------------------------------------------------ neighbours
    def _neighbours_of(self, movie_ids: Sequence[int], exclude: set[int], k: int) -> list[dict[str, Any]]:
        """Items near `movie_ids` (the first weighted most), per channel then fused by reciprocal rank."""
        idx = self.ids.item_index(np.asarray(movie_ids, dtype=np.int64))
        weights = RECENCY_DECAY ** np.arange(idx.size, dtype=np.float64)
        per_channel: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        known = idx >= 0
        for name, (nb, sim) in self.neighbours.items():
            if known.any():
                per_channel[name] = _weighted_neighbours(nb[idx[known]], sim[idx[known]], weights[known])
        cold = [m for m, i in zip(movie_ids, idx, strict=True) if i < 0]
        if cold:
            extra = self._cold_semantic(cold)
            if extra is not None:
                ids0, sc0 = per_channel.get("semantic", (np.zeros(0, np.int64), np.zeros(0)))
                per_channel["semantic"] = _sum_scores(np.concatenate([ids0, extra[0]]),
                                                      np.concatenate([sc0, extra[1]]))
        return self._fuse(per_channel, exclude, k)

    def _fuse(self, per_channel: dict[str, tuple[np.ndarray, np.ndarray]], exclude: set[int], k: int
              ) -> list[dict[str, Any]]:
        fused: dict[int, float] = {}
        found: dict[int, dict[str, float]] = {}
        excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
        for name, (items, scores) in per_channel.items():
            order = np.argsort(-scores, kind="stable")
            raw = self.ids.item_ids[items[order]]
            keep = np.flatnonzero(~np.isin(raw, excluded))[: 4 * k]  # the channel's best 4k unseen items
            for rank, (m, score) in enumerate(zip(raw[keep].tolist(), scores[order[keep]].tolist(), strict=True),
                                              start=1):
                fused[m] = fused.get(m, 0.0) + 1.0 / (RRF_K + rank)
                found.setdefault(m, {})[name] = round(score, 6)
        best = sorted(fused, key=lambda m: (-fused[m], m))[:k]
        return [{**self._item(m, fused[m], sorted(found[m]), "rrf"), "channel_scores": found[m]} for m in best]

    def _cold_semantic(self, movie_ids: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """Semantic neighbours (item indices, summed cosine) of movies outside the training split, from their
        embeddings; None when `item_embeddings` were never materialized."""
        if self._cold_vectors is None:
            from movielens_assets.core.text.store import load_item_embeddings

            try:
                ids, vectors, _ = load_item_embeddings(self.paths.features)
            except (FileNotFoundError, OSError, ValueError):
                return None
            train = np.load(self.paths.channel("semantic") / "item_embeddings.npy", mmap_mode="r")
            has = np.load(self.paths.channel("semantic") / "has_embedding.npy")
            self._cold_vectors = (np.asarray(ids, dtype=np.int64), vectors, np.asarray(train) * has[:, None])
        ids, vectors, train = self._cold_vectors
        pos = np.searchsorted(ids, movie_ids)
        ok = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == movie_ids)
        if not ok.any():
            return None
        sims = np.maximum(train @ vectors[pos[ok]].T, 0.0).sum(axis=1)
        top = np.argpartition(-sims, min(4 * MAX_K, sims.size - 1))[: 4 * MAX_K]
        return top.astype(np.int64), sims[top]

    def similar(self, movie: Any, k: Any = 10) -> dict[str, Any]:
        """Movies similar to `movie` (an id or a title) from ItemCF and semantic neighbours, fused."""
        k = check_k(k)
        movie_id = self.find_movie(movie)
        items = self._neighbours_of([movie_id], exclude={movie_id}, k=k)
        return {"movie": self.movie(movie_id), "k": k, "items": [{"rank": i + 1, **p} for i, p in enumerate(items)]}

    @property
    def users_with_lists(self) -> np.ndarray:
        """Raw ids of the users with a precomputed list (the evaluated users), sorted."""
        return self._ranked.keys

    def rating_counts(self, users: np.ndarray) -> np.ndarray:
        """How many movies each user rated (0 for unknown users)."""
        pos = self.store.user_index(np.asarray(users, dtype=np.int64))
        train = np.where(pos >= 0, np.diff(self.store.indptr)[np.maximum(pos, 0)], 0)
        return train + self._test.lengths(users)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "dataset": self.dataset, "lake": str(self.paths.root),
                "users_with_lists": int(self._ranked.keys.size), "movies": int(self.movie_ids.size),
                "channels": self.channel_names, "load_seconds": round(self.load_seconds, 3)}


def _strip_year(title: str) -> str:
    return re.sub(r"\s*\(\d{4}[^()]*\)\s*$", "", title)


def _sorted_by(users: np.ndarray, rank: np.ndarray) -> bool:
    if users.size < 2:
        return True
    du = np.diff(users)
    return bool(np.all((du > 0) | ((du == 0) & (np.diff(rank) > 0))))


def _weighted_neighbours(nb: np.ndarray, sim: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum over query rows of weight * max(similarity, 0) per neighbour index (the channels' scoring rule)."""
    contrib = np.maximum(np.asarray(sim, dtype=np.float64), 0.0) * weights[:, None]
    nb = np.asarray(nb)
    valid = nb >= 0
    return _sum_scores(nb[valid].astype(np.int64), contrib[valid])


def _sum_scores(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(items, return_inverse=True)
    return uniq, np.bincount(inverse, weights=scores, minlength=uniq.size)
