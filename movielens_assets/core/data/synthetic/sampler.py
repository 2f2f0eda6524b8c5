"""The item sampler: segments of the catalogue by genre / cluster, released at a date, drawn by
popularity x age factor (`_Index`, `_draw_items`), and the draw rounds (`ROUNDS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.catalogue import AGE_EDGES, FRESH_BANDS, Catalogue, pop_head, popularity_law
from movielens_assets.core.data.synthetic.draw import _order
from movielens_assets.core.data.synthetic.tmdb_words import N_GENRES

USER_BIAS_SD = 0.45
TAGS_PER_RATING = 0.085  # tagging events x tags per event, before deduplication
TASTE_CONC = 0.35  # Dirichlet concentration of genre tastes around the population mix
DRIFT_MIN, DRIFT_MAX = 0.2, 0.6
MAINSTREAM_BETA = (1.0, 15.0)
BREADTH_EXP = 0.2
# favourite taste clusters: FAV_MIN + activity / FAV_PER_RATINGS slots (at most FAV_SLOTS) with Gamma(FAV_ALPHA x
# breadth) weights (small = concentrated on a few), chosen by genre taste x the cluster's share of its genre's
# popularity mass
FAV_SLOTS, FAV_MIN, FAV_PER_RATINGS, FAV_ALPHA = 16, 3, 40.0, 1.0
LOYALTY_BETA = (3.0, 3.0)  # share of the taste draws that go to a favourite cluster (else the user's genres)
RUN_MEAN = 15.0  # mean length of a run of consecutive ratings in one cluster (runs also break with sessions)
# sessions (see _timeline): 1 + Poisson((activity / SESSION_RATINGS) ** SESSION_EXP) potential sessions, a
# Beta share of the ratings in the first one, log-normal gaps (median GAP_DAYS per user, spread GAP_SIGMA)
SESSION_RATINGS, SESSION_EXP = 25.0, 0.8
FIRST_SHARE_BETA = (2.0, 1.5)
GAP_DAYS, GAP_SIGMA = 20.0, 1.2
TIE_BETA = (1.5, 3.0)  # per-user probability that a rating shares its predecessor's timestamp
PACE_S = 15.0  # median seconds between two pages of ratings of a session
P_FRESH = 0.25  # share of a returning session's draws among the releases of the last FRESH_DAYS
LATE_S, LATE_DEPTH = 0.5, 1.7  # from this drift position on, cluster draws are at least this deep (see ROUNDS)
FAV_AFF = 1.5  # rating affinity for the user's favourite clusters
# draw rounds (the first draws, then redraws of duplicates), as (source, depth): "run" = the cluster of the
# current run, "fav" = another favourite cluster (both only for loyal draws, the others draw in the user's
# genres), "genre" = the user's genres, "main" = the population mix; depth 1 = by popularity, d > 1 = by the
# popularity law with a d times wider head (deeper, the long tail unchanged), 0 = flat; then a per-user
# fallback
ROUNDS: tuple[tuple[str, float], ...] = (
    ("run", 1.0), ("run", 1.0), ("run", 1.7), ("run", 1.7), ("fav", 1.7), ("fav", 1.7), ("genre", 1.0),
    ("genre", 1.0), ("main", 1.0), ("main", 1.0), ("main", 0.0), ("main", 0.0),
)


_DAY0 = 60_000  # day offset so that (pre-1970, negative) release days sort correctly inside int64 keys


@dataclass
class _Index:
    """Movies grouped in segments (taste clusters or genres), sorted by release day within a segment.

    `released[s, d]` is the entry position just past the segment's movies released by day `day0 + d` (for the
    rating days and the age-band edges before them), so the movies of a segment in an age band at a date are a
    contiguous range of entries. `cum[depth]` holds, band after band (band-major, B x E entries + 1), the
    cumulated weights `popularity at that depth x age factor of the band`: one draw picks a band by its mass
    in the range, then a movie with one searchsorted."""

    movie: np.ndarray  # entry -> movie index
    seg: np.ndarray  # (n_segments + 1,) entry offsets
    day0: int
    released: np.ndarray  # (n_segments, n_days) int64 entry positions
    cum: dict[float, np.ndarray]  # depth (1 = by popularity, 0 = flat, see ROUNDS) -> (B * E + 1,) cumulated


@dataclass
class _Sampler:
    clusters: _Index  # segment = taste cluster
    genres: _Index  # segment = genre
    cluster_genre: np.ndarray  # (C,) primary genre of the cluster's movies
    cluster_share: np.ndarray  # (C,) choice weight of the cluster within its genre (sums to 1 per genre)


def population_mix(cat: Catalogue) -> np.ndarray:
    """Share of popularity-weighted demand per genre: what a "mainstream" draw follows."""
    ok = cat.genre_idx >= 0
    pi = np.bincount(cat.genre_idx[ok], weights=(cat.genre_w * cat.pop[:, None])[ok], minlength=N_GENRES)
    return pi / pi.sum()


def _index(
    cat: Catalogue, rows: np.ndarray, segment: np.ndarray, w: np.ndarray, n_seg: int, depths: tuple[float, ...],
    days: tuple[int, int],
) -> _Index:
    key = (segment.astype(np.int64) << 32) | (cat.release_day[rows].astype(np.int64) + _DAY0)
    order = np.lexsort((rows, key))
    rows, w, key = rows[order], w[order], key[order]
    day0 = days[0] - AGE_EDGES[-1]
    grid = np.arange(day0, days[1] + 1, dtype=np.int64) + _DAY0
    released = np.searchsorted(key, ((np.arange(n_seg, dtype=np.int64) << 32)[:, None] | grid[None, :]).ravel(),
                               side="right").reshape(n_seg, grid.size)
    age = cat.age_factor[rows]  # (E, B)
    cum = {}
    for d in depths:
        band_w = (_depth_weight(cat, d)[rows] * w)[None, :] * age.T  # (B, E)
        cum[d] = np.concatenate([[0.0], np.cumsum(band_w.ravel())])
        del band_w
    seg = np.searchsorted(key >> 32, np.arange(n_seg + 1), side="left")
    return _Index(rows, seg, int(day0), released, cum)


def _depth_weight(cat: Catalogue, depth: float) -> np.ndarray:
    """Draw weight of every movie at a depth (see ROUNDS): the popularity law with a `depth` times wider head
    (same per-movie noise), or flat for depth 0."""
    if depth == 0:
        return np.ones(cat.pop.size)
    if depth == 1:
        return cat.pop
    head = pop_head(cat.pop.size)
    r = 1.0 - cat.pop_level
    return cat.pop * popularity_law(r, depth * head) / popularity_law(r, head)


def _depths(*sources: str) -> tuple[float, ...]:
    return tuple(sorted({1.0, LATE_DEPTH} | {d for src, d in ROUNDS if src in sources}))


def _build_sampler(cat: Catalogue, days: tuple[int, int]) -> _Sampler:
    """Indexes for draws on the rating days `days` (first, last)."""
    rows, cols = np.nonzero(cat.genre_idx >= 0)
    g = cat.genre_idx[rows, cols].astype(np.int64)
    w = cat.genre_w[rows, cols]
    C = cat.n_clusters
    c_genre = np.zeros(C, dtype=np.int64)
    c_genre[cat.cluster] = cat.genre_idx[:, 0]
    mass = np.bincount(cat.cluster, weights=cat.pop, minlength=C)
    g_mass = np.bincount(c_genre, weights=mass, minlength=N_GENRES)
    m = len(cat.movie_id)
    return _Sampler(
        clusters=_index(cat, np.arange(m), cat.cluster, np.ones(m), C, _depths("run", "fav"), days),
        genres=_index(cat, rows, g, w, N_GENRES, _depths("genre", "main"), days),
        cluster_genre=c_genre,
        cluster_share=mass / np.maximum(g_mass[c_genre], 1e-300),
    )


DRAW_BLOCK = 1 << 17  # queries per block in _draw_items (bounds its (queries x bands) temporaries)


def _draw_items(
    ix: _Index, segment: np.ndarray, day: np.ndarray, rng: np.random.Generator, depth: float,
    fresh: np.ndarray | None = None,
) -> np.ndarray:
    """One movie per (segment, day) among the segment's movies released by `day`, by weight = popularity at
    `depth` (see ROUNDS) x the age factor of the movie's age band at `day`: an age band is picked by its mass,
    then a movie within it (one searchsorted). `fresh` queries only draw among the movies released in the
    last FRESH_DAYS (when the segment has any)."""
    n = segment.size
    g = segment.astype(np.int64)
    o = _order((g << 20) | (day - ix.day0))  # sorted queries make the lookups cache-friendly
    g = g[o]
    d = np.clip(day[o] - ix.day0, AGE_EDGES[-1], ix.released.shape[1] - 1)
    fr = None if fresh is None else fresh[o]
    u_band, u_pos = rng.random(n), rng.random(n)
    pos = np.empty(n, dtype=np.int64)
    for a in range(0, n, DRAW_BLOCK):
        b = min(n, a + DRAW_BLOCK)
        pos[a:b] = _draw_block(ix, g[a:b], d[a:b], None if fr is None else fr[a:b], depth, u_band[a:b], u_pos[a:b])
    # nothing of this segment released yet: one of its earliest movies
    none = pos < 0
    if none.any():
        first = ix.seg[g[none]]
        span = np.minimum(ix.seg[g[none] + 1] - first, 3)
        pos[none] = first + (rng.random(int(none.sum())) * span).astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    out[o] = ix.movie[np.minimum(pos, ix.movie.size - 1)]
    return out


def _draw_block(
    ix: _Index, g: np.ndarray, d: np.ndarray, fresh: np.ndarray | None, depth: float, u_band: np.ndarray,
    u_pos: np.ndarray,
) -> np.ndarray:
    """Entry positions drawn for segments `g` at table days `d` (-1 where the segment has nothing released)."""
    n, n_bands, e = g.size, len(AGE_EDGES), ix.movie.size
    # bounds[:, b] = entries released by day - AGE_EDGES[b]; band b = [bounds[:, b + 1], bounds[:, b])
    bounds = np.empty((n, n_bands + 1), dtype=np.int64)
    for b, age in enumerate(AGE_EDGES):
        bounds[:, b] = ix.released[g, d - age]
    bounds[:, n_bands] = ix.seg[g]
    cum = ix.cum[depth]
    base = np.arange(n_bands, dtype=np.int64) * e
    c_lo = cum[bounds[:, 1:] + base]
    mass = cum[bounds[:, :-1] + base] - c_lo
    if fresh is not None:
        young = mass[:, :FRESH_BANDS].sum(axis=1)
        mass[fresh & (young > 0), FRESH_BANDS:] = 0.0
    acc = np.cumsum(mass, axis=1)
    total = acc[:, -1]
    band = np.minimum((acc < (u_band * total)[:, None]).sum(axis=1), n_bands - 1)
    rows = np.arange(n)
    lo = bounds[rows, band + 1] + band * e
    hi = bounds[rows, band] + band * e
    x = c_lo[rows, band] + u_pos * mass[rows, band]
    pos = np.clip(np.searchsorted(cum, x, side="right") - 1, lo, np.maximum(hi - 1, lo)) - band * e
    return np.where(total > 0, pos, -1)


def _accept(key: np.ndarray, seen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mask of keys to accept: not in the sorted array `seen`, and one (random) occurrence per duplicate key.

    Random, not first-position, so that collisions do not push the redraws to the end of the timelines."""
    perm = rng.permutation(key.size)
    o = perm[_order(key[perm])]
    ks = key[o]
    first = np.ones(ks.size, dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    if seen.size:
        idx = np.minimum(np.searchsorted(seen, ks), seen.size - 1)
        first &= seen[idx] != ks
    ok = np.empty(key.size, dtype=bool)
    ok[o] = first
    return ok
