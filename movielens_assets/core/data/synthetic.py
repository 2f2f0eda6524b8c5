"""Deterministic synthetic MovieLens datasets in the exact ML-32M CSV format.

`generate_movielens(spec, out_dir, seed)` writes `ratings.csv`, `movies.csv`, `tags.csv`, `links.csv`
(+ `tmdb/movie_details.jsonl.gz`, see `synthetic_tmdb`) and `_SYNTHETIC.json`, atomically. Same spec +
seed + generator version -> byte-identical files. The files of every seed changed with 3.0.0: ratings.csv,
tags.csv and the TMDb payloads (vote counts and averages); movies.csv and links.csv stayed those of 2.0
(the catalogue's random stream is unchanged; see docs/SYNTHETIC.md).

The generative model (vectorised with numpy, streamed in chunks of ~1M ratings, bounded memory):

- Collection period (`span_days`, `first_ts`). Real releases of a small size were collected over a short
  period (ML-100K: 7 months, 1997-09 .. 1998-04; ML-1M: mostly one year, 2000), the large ones cover all of
  MovieLens' history. So does the generator: log-log interpolation between 215 days at 100k ratings, 365
  days at 1M and ML-32M's 1995-01-09 .. 2023-10-12 (10,504 days) from 10M on: synthetic-tiny 215 days,
  synthetic-small 277, synthetic-1m 365, synthetic-10m/25m/32m the whole period. Every period ends on
  2023-10-12 (half stars exist, the catalogue's titles run to 2023, movies.csv does not depend on it).
- Catalogue. Every movie has a latent genre profile (1-4 of 18 taste genres with weights; its listed
  MovieLens genres are that support, alphabetically, + IMAX for some recent blockbusters, or
  `(no genres listed)` for ~3%), a taste cluster (a sub-style nested in its primary genre: 0.3 sqrt(M)
  clusters, at least one per genre, of Gamma-distributed sizes: 25 for synthetic-small, 32 for
  synthetic-1m, ~90 at ML-32M's size; sequels share their starter's) and the cluster's niche (its rank in the
  genre modulo 1 niche per genre below 3,000 movies, 2 for synthetic-small, 8 from 12,000: the TMDb
  keywords and people follow it), a release date (the title's year), a popularity weight
  `exp(-r / h) + 0.00015 (r + 0.02) ** -1.5` of its relative rank r, h = 0.022 (87,585 / M) ** 0.45
  (exponential head, wider for smaller catalogues: 0.088 for synthetic-small; at ML-32M's size the top 10%
  hold ~97% of the weight but no single movie saturates; power-law long tail) with log-normal noise, a
  quality that raises its ratings (popular movies are better on average), a country / original
  language, and sometimes a franchise (collection, sequels). movieIds follow the order in which movies
  became available, with growing gaps (ML-like, max id ~ 2.7x the count).
- Popularity rises and fades (`LIFECYCLES`, `age_profiles`). A movie's draw weight at a date is its
  popularity x an age factor `level + amplitude x h(age)` taken in the band of its age then (`AGE_EDGES`:
  0-7 days, 1-3 weeks, 3-6 weeks, 1.5-3 months, 3-6 months, 6-12 months, 1-2 years, older). Lifecycles, more
  often blockbusters among popular movies: blockbusters (amplitude ~8 at release, decay ~45 days, then
  below their long-run level), regular movies (~3, ~4 months), slow-burners (rise over ~3 months, fade over
  ~1 year) and evergreens (flat, higher level); per-movie log-normal noise on each parameter.
- Users. Activity follows ML-32M: `20 + LogNormal(median 53, sigma 1.389)` (median 73, mean 159,
  min 20), rescaled to hit `n_ratings` exactly and capped at half the catalogue. Each user has an early
  and a late taste over genres (Dirichlet around the population mix) and drifts linearly from one to the
  other along their sequence; a few favourite clusters (3 + activity / 40 slots, at most 16, with
  Gamma(1) weights; each drawn by genre taste x the cluster's share of its genre's popularity) whose late
  version replaces a share of them (the drift) by clusters of the late taste; a loyalty (the share of taste
  draws in favourite clusters, Beta(3, 3): ~50%); a "mainstream" share of draws that follows the
  population mix (~6%; larger, and tastes flatter, for heavy raters); a rating bias; an arrival date in
  the collection period (density growing over time); sessions; whether they use half stars (only possible
  from 2003-02-18, as in ML).
- Sessions (`_timeline`). A user would rate in 1 + Poisson((activity / 25) ** 0.8) sessions, the first at
  arrival, the next ones after log-normal gaps (per-user median ~20 days, spread 1.2); sessions that would
  start after the end of the data are censored and their ratings go to the others: a Beta(2, 1.5) share
  (~57%) to the first session, the rest split at random. Within a session ratings come in pages: a
  rating shares its predecessor's timestamp with a per-user probability (Beta(1.5, 3), ~1/3), else follows
  it after ~15 s (log-normal). Rows are ordered by user, time, then movieId (the order of the splits).
  synthetic-small: 31% of the ratings have the same timestamp as the user's previous one, 94% of the gaps
  are <= 60 s, 67% of the ratings are on the user's first day, a third of the users rate in one session.
- Ratings. A user's timeline is cut into runs (~15 consecutive ratings, also cut at sessions) that each
  stay in one favourite cluster (early or late slot by drift position). For each position: loyal draws
  take a movie of the run's cluster, mainstream draws a genre of the population mix, the others a genre of
  the user's (early/late) taste; the movie is drawn among the segment's movies already released at that
  date by popularity x age factor (a band by its mass, then one searchsorted on cumulative weights; the
  band bounds come from a per-day table, `_Index`). Returning users rate what they have just watched: a
  quarter of the draws in sessions after the first are among the releases of the last 180 days
  (`P_FRESH`). In the second half of their sequence users go deeper (a 1.7x wider popularity head).
  Duplicates are redrawn in rounds (`ROUNDS`: the run's cluster, deeper, another favourite cluster, the
  user's genres, the population mix, flat), collisions being resolved at random positions; a per-hole
  fallback serves the rare heavy users who exhausted what was released. Rating score = user bias + movie
  quality + taste affinity (genres, favourite clusters) + noise (sd 0.8), cut at quantiles (calibrated on
  the first chunk) that reproduce ML's distribution (mode 4.0, mean ~3.54); whole stars only when the user
  or the date does not allow half stars.
- Tags. ~7% of users tag (heavier users more often); they tag a subset of the movies they rated, a few
  minutes (sometimes days) after rating, with the movie's keywords, descriptors of its genres or general
  ML-style tags (~6% tags per rating, as in ML-32M).

Why 3.0 (measured with `benchmarks/synthetic_realism.py`: the pipeline's channels, protocol last_n = each
user's last 3 ratings are test, Recall@20 / NDCG@20 over all users, seed 42; real MovieLens-100K beside):

| | popularity | popularity_recent (90 days) | ItemCF | two-tower |
|---|---|---|---|---|
| ML-100K (real) | 0.098 / 0.055 | 0.105 / - | 0.235 / 0.141 | 0.291 / 0.171 |
| synthetic-small 2.0 | 0.096 / 0.058 | 0.009 / 0.005 | 0.446 / 0.311 | 0.489 / 0.351 |
| synthetic-small 3.0 | 0.098 / 0.061 | 0.113 / 0.073 | 0.253 / 0.162 | 0.277 / 0.184 |
| synthetic-1m 2.0 | 0.064 / 0.036 | 0.008 / 0.004 | 0.405 / 0.278 | 0.469 / 0.328 |
| synthetic-1m 3.0 | 0.075 / 0.047 | 0.085 / 0.051 | 0.211 / 0.134 | 0.246 / 0.164 |

Generator 2.0 was about twice as easy as real data for collaborative models (~95% loyalty to a few taste
clusters) and had no time dynamics that ranking depends on: popularity was static, and each user's ratings,
so their last_n holdout, sat anywhere in 1995-2023, so that the 90 days before the last training timestamp
were "recent" for almost nobody (popularity_recent 10x worse than all-time popularity). 3.0 makes tastes
noisier (loyalty ~50%, flatter favourite weights, more mainstream draws, a wider head for small
catalogues) and adds time: a collection period per size (small datasets, like the real releases of their
size, were gathered within months, so "recent" is recent for everyone), popularity that rises and fades
with a movie's age, sessions with censoring at the end of the data, and returning users rating new
releases. Measured while building it (synthetic-small, seed 42): the collection period with rising and
fading popularity alone brings popularity_recent to ~1.0x popularity (0.94-1.05 over the variants tried:
the 90-day window holds half the training ratings of a 277-day period, and holdout dates are barely later
than training dates); returning users rating new releases (`P_FRESH`: their last sessions, hence their
holdouts, lean to what is new at that date) bring it to 1.1-1.2x. Left out: concentrating the users'
activity at the end of the data (an artificial surge at the cut that favours any recency method) and
tuning the channels (the data must fail where real data fails). With seeds 1-3, the popularity_recent /
popularity ratio is 1.07-1.11 on synthetic-small (1.15 for seed 42) and 1.18-1.19 on synthetic-1m (1.14),
ItemCF / popularity 2.1-2.4 and 2.5-2.9. global_time (80/10/10 time cut) evaluates 158 users of
synthetic-small (2.0: 45) and 531 of synthetic-1m (2.0: 141). On synthetic-tiny (120 users rating 21% of an
800-movie catalogue) ItemCF is only 1.0-1.4x popularity (seeds 1-5; 1.12 for 42): too few users for co-occurrence.

Size presets (`parse_synthetic_name`): see `PRESETS`. Generic `synthetic-<N>k|m`: N thousand/million
ratings, users = round(N / 159.25) (ML-32M's ratings per user), movies = round(87,585 * (N / 32,000,204)
** (2/3)) (sub-linear: smaller datasets have denser catalogues), at least 100.

Structural limit: a user rates a movie at most once, so the top-10% share of ratings cannot exceed the
share that fits in the top 10% of movies given the activity law (`top10_share_bound` in the stats:
~0.78 for synthetic-small, ~0.91 for synthetic-1m, ~1.0 at ML-32M's catalogue size). synthetic-32m's
top-10% share is 0.916 (ML-32M: ~0.91); smaller presets are less concentrated (synthetic-small 0.48,
synthetic-1m 0.63), their popularity head being wider as well. synthetic-32m generates in ~85-95 s
(83 s of CPU) with a 530 MB peak on a shared 2-core machine (2.0: 73 s, 480 MB): the age-banded draws cost
~10 more seconds of CPU, their per-block temporaries ~50 MB.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.synthetic_tmdb import (
    COUNTRIES,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    GENERAL_TAGS,
    GENERIC_TITLE_ADJ,
    GENERIC_TITLE_NOUN,
    GENRE_INDEX,
    LATENT_GENRES,
    LEXICON,
    N_GENRES,
    ORIGINAL_TITLE_PARTS,
    PLACE_NAMES,
    TMDB_FILE,
    VOCABULARY,
    movie_keywords,
    write_tmdb_payloads,
)

GENERATOR_VERSION = "3.0.0"
MARKER = "_SYNTHETIC.json"
FILES = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")

#: All MovieLens genres (as listed in movies.csv, alphabetical), plus the marker for none.
ML_GENRES: tuple[str, ...] = tuple(sorted((*LATENT_GENRES, "IMAX")))
NO_GENRES = "(no genres listed)"

ML32M_RATINGS, ML32M_USERS, ML32M_MOVIES = 32_000_204, 200_948, 87_585
RATINGS_PER_USER = 159.25
MIN_ACTIVITY = 20

START_TS = 789_609_600  # 1995-01-09 (first MovieLens rating)
END_TS = 1_697_068_800 + 86_399  # 2023-10-12 (last ML-32M day)
HALF_STARS_TS = 1_045_526_400  # 2003-02-18: MovieLens introduced half stars
DAY = 86_400

_SEQ_CATALOGUE, _SEQ_USERS, _SEQ_CHUNK, _SEQ_TAGS, _SEQ_DYNAMICS = 11, 21, 31, 41, 51

# --------------------------------------------------------------------------------------------------
# Spec and names
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    name: str
    n_ratings: int
    n_users: int
    n_movies: int


def users_for_ratings(n_ratings: int) -> int:
    """ML-32M's ratings per user: users = round(n_ratings / 159.25)."""
    return max(1, round(n_ratings / RATINGS_PER_USER))


def movies_for_ratings(n_ratings: int) -> int:
    """Sub-linear catalogue: movies = round(87,585 * (n_ratings / 32,000,204) ** (2/3)), at least 100."""
    return max(100, round(ML32M_MOVIES * (n_ratings / ML32M_RATINGS) ** (2 / 3)))


def _generic(name: str, n_ratings: int) -> SyntheticSpec:
    return SyntheticSpec(name, n_ratings, users_for_ratings(n_ratings), movies_for_ratings(n_ratings))


PRESETS: dict[str, SyntheticSpec] = {
    "synthetic-tiny": SyntheticSpec("synthetic-tiny", 20_000, 120, 800),
    "synthetic-small": SyntheticSpec("synthetic-small", 300_000, 2_000, 4_000),
    "synthetic-1m": _generic("synthetic-1m", 1_000_000),
    "synthetic-10m": _generic("synthetic-10m", 10_000_000),
    "synthetic-25m": _generic("synthetic-25m", 25_000_000),
    "synthetic-32m": SyntheticSpec("synthetic-32m", ML32M_RATINGS, ML32M_USERS, ML32M_MOVIES),
}
_GENERIC = re.compile(r"^synthetic-(\d+(?:\.\d+)?)([km])$")
MIN_GENERIC, MAX_GENERIC = 20_000, 100_000_000


def _valid_forms() -> str:
    return (
        f"valid names: {', '.join(PRESETS)}, or synthetic-<N>k / synthetic-<N>m "
        f"(N thousand / million ratings, {MIN_GENERIC // 1000}k to {MAX_GENERIC // 1_000_000}m, e.g. synthetic-50k, "
        "synthetic-2.5m)"
    )


def parse_synthetic_name(name: str) -> SyntheticSpec:
    """`synthetic-tiny|small|1m|10m|25m|32m` or `synthetic-<N>k|m`; ValueError listing the valid forms otherwise."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key in PRESETS:
        return PRESETS[key]
    m = _GENERIC.match(key)
    if not m:
        raise ValueError(f"unknown synthetic dataset {name!r}; {_valid_forms()}")
    n = round(float(m.group(1)) * (1_000 if m.group(2) == "k" else 1_000_000))
    if not MIN_GENERIC <= n <= MAX_GENERIC:
        raise ValueError(f"synthetic dataset {name!r} has {n:,} ratings, out of range; {_valid_forms()}")
    return _generic(key, n)


def _check_spec(spec: SyntheticSpec) -> None:
    if spec.n_users < 1 or spec.n_movies < 20 or spec.n_ratings < spec.n_users:
        raise ValueError(f"{spec}: need n_users >= 1, n_movies >= 20 and n_ratings >= n_users")
    if spec.n_ratings > spec.n_users * _activity_cap(spec):
        raise ValueError(
            f"{spec}: {spec.n_ratings:,} ratings do not fit {spec.n_users:,} users rating at most "
            f"{_activity_cap(spec):,} distinct movies each"
        )


def _activity_cap(spec: SyntheticSpec) -> int:
    return max(MIN_ACTIVITY, min(35_000, spec.n_movies // 2))


#: (ratings, collection period in days) of the real releases: ML-100K gathered its 100,000 ratings in 7 months
#: (1997-09-20 .. 1998-04-22), ML-1M most of its 1M within one year (2000); ML-10M and larger releases cover
#: MovieLens' whole history (here 1995-01-09 .. 2023-10-12, ML-32M's).
_SPAN_ANCHORS = ((100_000, 215.0), (1_000_000, 365.0), (10_000_000, (END_TS + 1 - START_TS) / DAY))


def span_days(n_ratings: int) -> int:
    """Length in days of the collection period of a dataset of `n_ratings`: log-log interpolation between
    `_SPAN_ANCHORS`, clamped (215 days for synthetic-tiny, 277 for synthetic-small, 365 for synthetic-1m,
    ~3.8 years for synthetic-2.5m, ML-32M's 10,504 days from synthetic-10m on)."""
    x = np.log([a for a, _ in _SPAN_ANCHORS])
    y = np.log([d for _, d in _SPAN_ANCHORS])
    return round(float(np.exp(np.interp(math.log(max(n_ratings, 1)), x, y))))


def first_ts(spec: SyntheticSpec) -> int:
    """Earliest rating timestamp of the dataset: the collection period always ends on ML-32M's last day
    (2023-10-12: half stars exist, the catalogue's titles run to 2023), and starts `span_days` before."""
    return max(START_TS, END_TS + 1 - span_days(spec.n_ratings) * DAY)


def _ss(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


# --------------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------------

# share of movies whose PRIMARY genre is g (ML-32M-like genre frequencies)
_BASE = {
    "Action": 0.07, "Adventure": 0.03, "Animation": 0.035, "Children": 0.02, "Comedy": 0.19, "Crime": 0.04,
    "Documentary": 0.07, "Drama": 0.26, "Fantasy": 0.02, "Film-Noir": 0.005, "Horror": 0.07, "Musical": 0.01,
    "Mystery": 0.02, "Romance": 0.05, "Sci-Fi": 0.03, "Thriller": 0.06, "War": 0.015, "Western": 0.012,
}
_PAIRS = (
    ("Crime", "Thriller"), ("Crime", "Drama"), ("Thriller", "Mystery"), ("Horror", "Thriller"),
    ("Animation", "Children"), ("Children", "Comedy"), ("Animation", "Comedy"), ("Adventure", "Action"),
    ("Action", "Sci-Fi"), ("Action", "Thriller"), ("Fantasy", "Adventure"), ("Romance", "Comedy"),
    ("Romance", "Drama"), ("War", "Drama"), ("War", "Action"), ("Western", "Action"), ("Musical", "Romance"),
    ("Musical", "Comedy"), ("Film-Noir", "Crime"), ("Film-Noir", "Mystery"), ("Sci-Fi", "Horror"),
    ("Drama", "Comedy"), ("Fantasy", "Children"), ("Adventure", "Children"), ("Mystery", "Horror"),
    ("Sci-Fi", "Adventure"), ("Crime", "Action"), ("Drama", "Thriller"),
)
MAX_GENRES_PER_MOVIE = 4
MAX_NICHES, MOVIES_PER_NICHE_UNIT = 8, 1_500


POP_HEAD, POP_TAIL, POP_TAIL_EXP = 0.022, 0.00015, 1.5
POP_HEAD_SIZE_EXP = 0.45  # the head (relative) widens for smaller catalogues: 0.022 (87,585 / movies) ** this
QUALITY_POP = 2.0  # popular movies are better on average


CLUSTERS_PER_SQRT_MOVIE = 0.3
CLUSTER_SIZE_SHAPE = 2.0  # Gamma shape of the relative sizes of a genre's taste clusters


def clusters_for(n_movies: int) -> int:
    """Target number of taste clusters, 0.3 sqrt(movies), at least one per genre (after rounding per genre:
    25 for synthetic-small, 32 for synthetic-1m, ~90 at ML-32M's catalogue size). Few, large clusters: users
    do not exhaust the popular movies of their few favourite clusters."""
    return max(N_GENRES, round(CLUSTERS_PER_SQRT_MOVIE * math.sqrt(n_movies)))


def niches_for(n_movies: int) -> int:
    """Niches (content sub-styles) per genre, which the TMDb keywords and people follow; a movie's niche is its
    taste cluster's (1 below 3,000 movies, 2 for synthetic-small, 8 from 12,000)."""
    return int(min(MAX_NICHES, max(1, n_movies // MOVIES_PER_NICHE_UNIT)))


def pop_head(n_movies: int) -> float:
    """Relative width of the exponential head of the popularity law: POP_HEAD at ML-32M's catalogue size,
    wider for smaller catalogues (0.088 for synthetic-small, 0.062 for synthetic-1m; generator 2.0's exponent
    0.4 gave 0.076 and 0.056: popularity too predictive once tastes became noisier in 3.0)."""
    return POP_HEAD * (ML32M_MOVIES / n_movies) ** POP_HEAD_SIZE_EXP


def popularity_law(r: np.ndarray, head: float = POP_HEAD) -> np.ndarray:
    """Popularity weight at relative rank r in (0, 1): an exponential head (at ML-32M's size, head 0.022: the
    top 10% of movies hold ~97% of the weight, the top 1% ~36%, so that no single movie saturates) plus a
    power-law long tail."""
    return np.exp(-r / head) + POP_TAIL * (r + 0.02) ** -POP_TAIL_EXP


#: Age bands (days since release; the last one is open) of the popularity dynamics: a movie's draw weight at a
#: rating date is its popularity x its age factor in the band its age falls in (see `age_profiles`).
AGE_EDGES: tuple[int, ...] = (0, 7, 21, 45, 90, 180, 365, 730)
FRESH_DAYS = 180  # returning users' "just watched" draws (P_FRESH) are among the releases of these last days
FRESH_BANDS = AGE_EDGES.index(FRESH_DAYS)
_OPEN_BAND_AGES = (730.0, 2190.0)  # ages averaged over for the open last band
_AGE_POINTS = 12  # ages averaged over per band

#: Lifecycles: (name, share among the least / the most popular movies (linear in between), burst amplitude,
#: decay (days), rise (days, 0 = at once), long-run level), medians of per-movie log-normal draws. A movie's age
#: factor is `level + amplitude x h(age)`, h(age) = exp(-age / decay) (x (1 - exp(-(age + 1) / rise)) / its
#: peak for slow-burners): blockbusters peak at release and fade within months to below their long-run
#: popularity, slow-burners rise over months and fade over years, evergreens barely change.
LIFECYCLES: tuple[tuple[str, float, float, float, float, float, float], ...] = (
    ("blockbuster", 0.05, 0.45, 8.0, 45.0, 0.0, 0.7),
    ("regular", 0.50, 0.25, 3.0, 120.0, 0.0, 1.0),
    ("slow-burner", 0.25, 0.10, 2.0, 400.0, 90.0, 1.0),
    ("evergreen", 0.20, 0.20, 0.3, 365.0, 0.0, 1.4),
)


def age_profiles(pop_level: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(lifecycle index (M,), age factor (M, len(AGE_EDGES)): the mean of `level + amplitude x h(age)` over
    each age band) of every movie, from its popularity level (1 = most popular)."""
    rng = _ss(seed, _SEQ_DYNAMICS)
    m = pop_level.size
    lo = np.array([c[1] for c in LIFECYCLES])
    hi = np.array([c[2] for c in LIFECYCLES])
    p = lo[None, :] + (hi - lo)[None, :] * pop_level[:, None]
    kind = _categorical_rows(p, np.arange(m), rng)
    med = np.array([c[3:] for c in LIFECYCLES])[kind]  # (M, 4): amplitude, decay, rise, level
    amp = med[:, 0] * np.exp(rng.normal(0.0, 0.5, m))
    decay = med[:, 1] * np.exp(rng.normal(0.0, 0.4, m))
    rise = med[:, 2] * np.exp(rng.normal(0.0, 0.4, m))
    level = med[:, 3] * np.exp(rng.normal(0.0, 0.25, m))
    ages = [np.linspace(a, b, _AGE_POINTS, endpoint=False) for a, b in itertools.pairwise(AGE_EDGES)]
    ages.append(np.linspace(*_OPEN_BAND_AGES, _AGE_POINTS))

    def shape(age: np.ndarray) -> np.ndarray:
        h = np.exp(-age[None, :] / decay[:, None])
        slow = rise > 0
        h[slow] *= 1.0 - np.exp(-(age[None, :] + 1.0) / rise[slow, None])
        return h

    hs = [shape(a) for a in ages]
    h = np.stack([x.mean(axis=1) for x in hs], axis=1)
    peak = np.max([x.max(axis=1) for x in hs], axis=0)
    return kind, level[:, None] + amp[:, None] * h / peak[:, None]


@dataclass
class Catalogue:
    """Everything known about the movies, indexed 0..M-1 in movieId order."""

    movie_id: np.ndarray
    year: np.ndarray  # int, 0 when the title has no year
    release_day: np.ndarray  # days since epoch (availability for rating)
    show_year: np.ndarray  # bool
    genre_idx: np.ndarray  # (M, 4) latent genre indices, primary first, -1 padded
    genre_w: np.ndarray  # (M, 4) profile weights (rows sum to 1)
    niche: np.ndarray  # (M,) sub-style 0..n_niches-1 within each of its genres (= its cluster's)
    n_niches: int
    cluster: np.ndarray  # (M,) taste cluster (clusters nest in the primary genre, sequels share it)
    n_clusters: int
    listed: list[str]  # movies.csv genres field
    no_genres: np.ndarray  # bool
    pop: np.ndarray  # popularity weight
    pop_level: np.ndarray  # 1 = most popular, 0 = least (rank-based)
    quality: np.ndarray  # standardised quality
    country: np.ndarray  # index into COUNTRIES
    title: list[str]  # movies.csv title
    display_title: list[str]  # TMDb title (English, article in front)
    original_title: list[str]
    collection: np.ndarray  # -1 or collection index
    collection_name: list[str]
    collection_tmdb_id: np.ndarray
    imdb_id: np.ndarray
    tmdb_id: np.ndarray  # -1 = missing
    lifecycle: np.ndarray  # index into LIFECYCLES
    age_factor: np.ndarray  # (M, len(AGE_EDGES)) draw-weight multiplier per age band (see age_profiles)


def build_catalogue(spec: SyntheticSpec, seed: int) -> Catalogue:
    rng = _ss(seed, _SEQ_CATALOGUE)
    m = spec.n_movies
    G = N_GENRES
    base = np.array([_BASE[g] for g in LATENT_GENRES])
    base = base / base.sum()
    aff = np.zeros((G, G))
    for a, b in _PAIRS:
        aff[GENRE_INDEX[a], GENRE_INDEX[b]] = aff[GENRE_INDEX[b], GENRE_INDEX[a]] = 1.0

    # ---- genres
    primary = rng.choice(G, size=m, p=base)
    n_gen = rng.choice([1, 2, 3, 4], size=m, p=[0.36, 0.36, 0.2, 0.08])
    doc = primary == GENRE_INDEX["Documentary"]
    n_gen = np.where(doc & (rng.random(m) < 0.85), 1, n_gen)
    n_gen = np.where(primary == GENRE_INDEX["Animation"], np.maximum(n_gen, 2), n_gen)
    gidx = np.full((m, MAX_GENRES_PER_MOVIE), -1, dtype=np.int64)
    gidx[:, 0] = primary
    chosen = np.zeros((m, G), dtype=bool)
    chosen[np.arange(m), primary] = True
    for k in range(1, MAX_GENRES_PER_MOVIE):
        rows = np.flatnonzero(n_gen > k)
        if rows.size == 0:
            continue
        prev = gidx[rows, :k]
        boost = aff[prev.clip(0)].max(axis=1)  # affinity to any already chosen genre
        p = base[None, :] ** 0.7 * (0.15 + 6.0 * boost)
        p[chosen[rows]] = 0.0
        p[:, GENRE_INDEX["Documentary"]] *= 0.05
        p[:, GENRE_INDEX["Film-Noir"]] *= 0.1
        cum = np.cumsum(p, axis=1)
        u = rng.random(rows.size)[:, None] * cum[:, -1:]
        g = np.minimum((cum <= u).sum(axis=1), G - 1)
        gidx[rows, k] = g
        chosen[rows, g] = True
    w = np.where(gidx >= 0, rng.uniform(0.25, 0.8, gidx.shape), 0.0)
    w[:, 0] = 1.0
    w = (w / w.sum(axis=1, keepdims=True)).astype(np.float64)

    # ---- release years and days
    year = 2023 - np.floor(rng.exponential(17.0, m)).astype(np.int64)
    old = rng.random(m) < 0.12
    year = np.where(old | (year < 1902), rng.integers(1915, 1975, m), year)
    west = primary == GENRE_INDEX["Western"]
    year = np.where(west & (rng.random(m) < 0.55), rng.integers(1930, 1976, m), year)
    noir = chosen[:, GENRE_INDEX["Film-Noir"]]
    year = np.where(noir, rng.integers(1940, 1960, m), year)
    jan1 = (year - 1970) * 365 + (year - 1969) // 4  # days since epoch of Jan 1 (valid 1901-2099)
    span = np.where(year == 2023, 270, 365)
    release_day = jan1 + rng.integers(0, 1 << 30, m) % span

    # ---- popularity (law of the relative rank, see popularity_law), quality, taste cluster and niche
    rank = rng.permutation(m)
    r = (rank + 0.5) / m
    pop = popularity_law(r, pop_head(m)) * np.exp(rng.normal(0.0, 0.3, m))
    pop_level = 1.0 - r
    quality = 0.8 * rng.standard_normal(m) + QUALITY_POP * (pop_level - 0.5)
    # taste clusters: each genre gets clusters in proportion to its (primary) movies, of Gamma-distributed
    # relative sizes; a cluster's niche is its rank within the genre modulo the number of niches
    n_niches = niches_for(m)
    n_prim = np.bincount(primary, minlength=G)
    per_genre = np.where(n_prim > 0, np.maximum(1, np.round(clusters_for(m) * n_prim / m)), 0).astype(np.int64)
    c_start = np.concatenate([[0], np.cumsum(per_genre)])
    n_clusters = int(c_start[-1])
    c_size = rng.gamma(CLUSTER_SIZE_SHAPE, 1.0, n_clusters)
    c_genre = np.repeat(np.arange(G), per_genre)
    c_cum = np.cumsum(c_size)
    c_base = np.concatenate([[0.0], c_cum])[c_start[:-1]]  # cumulated size before each genre's first cluster
    u = c_base[primary] + rng.random(m) * (c_cum[c_start[1:] - 1] - c_base)[primary]
    cluster = np.clip(np.searchsorted(c_cum, u, side="right"), c_start[primary], c_start[primary + 1] - 1)
    niche = ((np.arange(n_clusters) - c_start[c_genre]) % n_niches)[cluster]

    # ---- listed genres: IMAX for some recent blockbusters, none for a few obscure movies
    imax_ok = np.isin(primary, [GENRE_INDEX[g] for g in ("Action", "Adventure", "Sci-Fi", "Animation", "Fantasy")])
    imax = imax_ok & (year >= 2000) & (pop_level > 0.93) & (rng.random(m) < 0.3)
    no_genres = (~noir) & (rng.random(m) < 0.045 * (1.2 - pop_level))

    country = rng.choice(len(COUNTRIES), size=m, p=np.array([c[3] for c in COUNTRIES]) / sum(c[3] for c in COUNTRIES))
    show_year = rng.random(m) > 0.003

    # ---- franchises: a popular starter and 1-4 sequels that share its genres, country and name
    eligible = np.flatnonzero((pop_level > 0.4) & ~doc & (year < 2018))
    n_coll = min(max(1, int(0.022 * m)), eligible.size)
    starters = rng.choice(eligible, size=n_coll, replace=False)
    is_starter = np.zeros(m, dtype=bool)
    is_starter[starters] = True
    free = rng.permutation(np.flatnonzero(~is_starter))
    collection = np.full(m, -1, dtype=np.int64)
    sequel_no = np.zeros(m, dtype=np.int64)
    taken = 0
    for c, s in enumerate(starters.tolist()):
        collection[s] = c
        y = int(year[s])
        for k in range(1 + int(rng.binomial(3, 0.3))):
            y += int(rng.integers(1, 5))
            if y > 2023 or taken >= free.size:
                break
            q = int(free[taken])
            taken += 1
            collection[q] = c
            sequel_no[q] = k + 2
            gidx[q], w[q], primary[q], country[q], niche[q] = gidx[s], w[s], primary[s], country[s], niche[s]
            cluster[q] = cluster[s]
            noir[q], no_genres[q], show_year[q] = noir[s], False, True
            year[q] = y
            jan1_q = (y - 1970) * 365 + (y - 1969) // 4
            release_day[q] = jan1_q + int(rng.integers(0, 270 if y == 2023 else 365))
    show_year[collection >= 0] = True

    # ---- titles
    titles_en = _english_titles(rng, gidx[:, 0], m)
    coll_base = [titles_en[s] for s in starters.tolist()]
    coll_name = [f"{b} Collection" for b in coll_base]
    sequel_style = rng.integers(0, 3, n_coll)
    subtitle_words = GENERIC_TITLE_NOUN
    for q in np.flatnonzero(sequel_no > 0).tolist():
        c = int(collection[q])
        n = int(sequel_no[q])
        st = int(sequel_style[c])
        base_t = coll_base[c]
        if st == 0:
            titles_en[q] = f"{base_t} {n}"
        elif st == 1:
            titles_en[q] = f"{base_t} {['', '', 'II', 'III', 'IV', 'V', 'VI'][n]}"
        else:
            titles_en[q] = f"{base_t}: {GENERIC_TITLE_ADJ[(q * 7 + n) % len(GENERIC_TITLE_ADJ)]} " \
                           f"{subtitle_words[(q * 13 + n) % len(subtitle_words)]}"
    original = list(titles_en)
    ml_titles = []
    rot = rng.random(m)
    alt = rng.random(m)
    o1 = rng.integers(0, 1 << 20, m)
    o2 = rng.integers(0, 1 << 20, m)
    for i in range(m):
        lang = COUNTRIES[int(country[i])][2]
        t = titles_en[i]
        if lang != "en":
            first, second = ORIGINAL_TITLE_PARTS[lang]
            original[i] = f"{first[o1[i] % len(first)]} {second[o2[i] % len(second)]}"
        shown = _rotate_article(t) if rot[i] < (0.9 if year[i] < 2010 else 0.5) else t
        if lang != "en" and alt[i] < 0.5 and _latin(original[i]):
            shown = f"{shown} ({_rotate_article(original[i])})"
        if show_year[i]:
            shown = f"{shown} ({int(year[i])})"
        ml_titles.append(shown)
    listed = []
    for i in range(m):
        if no_genres[i]:
            listed.append(NO_GENRES)
            continue
        names = [LATENT_GENRES[g] for g in gidx[i] if g >= 0]
        if imax[i]:
            names.append("IMAX")
        listed.append("|".join(sorted(names)))

    # ---- movieIds: order of availability (ML ids grow with the date a movie was added), with gaps
    add_key = np.maximum(release_day, (START_TS // DAY) + rng.exponential(3 * 365, m).astype(np.int64))
    order = np.lexsort((rng.random(m), add_key))
    frac = np.arange(m) / m
    gaps = 1 + rng.poisson(0.3 + 4.6 * frac**2)
    ids_sorted = np.cumsum(gaps)
    inv = np.empty(m, dtype=np.int64)
    inv[order] = np.arange(m)
    movie_id = ids_sorted[inv]
    # imdb ids grow with release date (7 digits), tmdb ids with the time the movie entered TMDb
    imdb_rank = np.argsort(np.argsort(release_day + rng.normal(0, 700, m), kind="stable"), kind="stable")
    imdb_vals = _sorted_unique(rng, m, 1, 9_999_999)
    imdb_id = imdb_vals[imdb_rank]
    tmdb_rank = np.argsort(np.argsort(add_key + rng.normal(0, 2500, m), kind="stable"), kind="stable")
    tmdb_vals = _sorted_unique(rng, m, 2, max(1_250_000, 4 * m))
    tmdb_id = tmdb_vals[tmdb_rank]
    missing = rng.random(m) < 0.003
    if m >= 50 and not missing.any():
        missing[int(rng.integers(0, m))] = True
    tmdb_id = np.where(missing, -1, tmdb_id)
    coll_tmdb = _sorted_unique(rng, n_coll, 1_000, 1_300_000)[rng.permutation(n_coll)]

    # popularity dynamics (own random stream: the rest of the catalogue is that of generator 2.0)
    lifecycle, age_factor = age_profiles(pop_level, seed)

    # reorder everything by movieId
    o = np.argsort(movie_id, kind="stable")

    def take(a: np.ndarray) -> np.ndarray:
        return a[o]

    def take_list(a: list) -> list:
        return [a[i] for i in o.tolist()]

    return Catalogue(
        movie_id=take(movie_id),
        year=np.where(show_year, year, 0)[o],
        release_day=take(release_day),
        show_year=take(show_year),
        genre_idx=take(gidx),
        genre_w=take(w),
        niche=take(niche),
        n_niches=n_niches,
        cluster=take(cluster),
        n_clusters=n_clusters,
        listed=take_list(listed),
        no_genres=take(no_genres),
        pop=take(pop),
        pop_level=take(pop_level),
        quality=take(quality),
        country=take(country),
        title=take_list(ml_titles),
        display_title=take_list(titles_en),
        original_title=take_list(original),
        collection=take(collection),
        collection_name=coll_name,
        collection_tmdb_id=coll_tmdb,
        imdb_id=take(imdb_id),
        tmdb_id=take(tmdb_id),
        lifecycle=lifecycle[o],
        age_factor=age_factor[o],
    )


def _latin(s: str) -> bool:
    return all(ord(ch) < 0x250 for ch in s)


def _rotate_article(t: str) -> str:
    for art in ("The ", "A ", "An ", "La ", "Le ", "Les ", "Il ", "El ", "Die ", "Das ", "Der "):
        if t.startswith(art) and len(t) > len(art):
            head, _, rest = t.partition(": ")
            core = head[len(art):] + ", " + art.strip()
            return core + (f": {rest}" if rest else "")
    return t


def _sorted_unique(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    gap = max(1, (hi - lo) // max(n, 1))
    steps = 1 + (rng.integers(0, 2 * gap - 1, n) if gap > 1 else np.zeros(n, dtype=np.int64))
    vals = lo - 1 + np.cumsum(steps)
    if n and vals[-1] >= hi:  # pragma: no cover - only for absurd sizes
        vals = lo + np.arange(n)
    return vals.astype(np.int64)


def _english_titles(rng: np.random.Generator, primary: np.ndarray, m: int) -> list[str]:
    pat = rng.choice(10, size=m, p=[0.16, 0.16, 0.16, 0.1, 0.1, 0.06, 0.08, 0.08, 0.08, 0.02])
    r = rng.integers(0, 1 << 30, (m, 4))
    out = []
    for i in range(m):
        lex = LEXICON[LATENT_GENRES[int(primary[i])]]
        a, b, c, d = (int(x) for x in r[i])
        gw = lex.title[a % len(lex.title)]
        gw2 = lex.title[b % len(lex.title)]
        adj = GENERIC_TITLE_ADJ[c % len(GENERIC_TITLE_ADJ)]
        noun = GENERIC_TITLE_NOUN[d % len(GENERIC_TITLE_NOUN)]
        p = int(pat[i])
        if p == 0:
            t = gw
        elif p == 1:
            t = f"{adj} {gw}"
        elif p == 2:
            t = f"The {gw}"
        elif p == 3:
            t = f"{gw} of the {noun}"
        elif p == 4:
            names = FIRST_NAMES_F if d % 2 else FIRST_NAMES_M
            first = names[c % len(names)]
            t = f"{first}'s {gw}"
        elif p == 5:
            t = f"A {gw} in {PLACE_NAMES[d % len(PLACE_NAMES)]}"
        elif p == 6:
            t = f"The {adj} {noun}" if gw == gw2 else f"{gw} and {gw2}"
        elif p == 7:
            t = f"{gw}, {PLACE_NAMES[c % len(PLACE_NAMES)]}"
        elif p == 8:
            t = f"The {noun} {gw}"
        else:
            t = f'{adj} "{gw}"'
        out.append(t)
    return out


# --------------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------------


@dataclass
class Users:
    activity: np.ndarray
    start_ts: np.ndarray
    tau0: np.ndarray  # (U, G) early taste over genres
    tau1: np.ndarray  # (U, G) late taste
    mainstream: np.ndarray
    breadth: np.ndarray  # >= 1: heavy raters have broader tastes
    drift: np.ndarray  # share of the taste that changes from the early to the late part of the sequence
    bias: np.ndarray
    half: np.ndarray  # uses half stars when available
    sessions: np.ndarray  # sessions the user would have without the end of the data (>= 1)
    first_share: np.ndarray  # share of the user's ratings in their first session
    gap_days: np.ndarray  # median gap between sessions
    tie_p: np.ndarray  # probability that a rating has the same timestamp as the previous one (same page)
    pace_s: np.ndarray  # median seconds between two pages of ratings in a session
    tag_events: np.ndarray  # number of (movie) tagging events, 0 for non-taggers
    first_ts: int  # start of the collection period (see first_ts)


def _activity(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """ML-32M activity law rescaled to sum exactly to n_ratings (min 20, capped)."""
    n, total = spec.n_users, spec.n_ratings
    lo = min(MIN_ACTIVITY, total // n)
    cap = _activity_cap(spec)
    x = np.exp(math.log(53.0) + 1.389 * rng.standard_normal(n))

    def total_for(f: float) -> int:
        return int(np.clip(np.round(lo + f * x), lo, cap).sum())

    a, b = 0.0, 1.0
    while total_for(b) < total:
        b *= 2
        if b > 1e9:
            break
    for _ in range(80):
        mid = (a + b) / 2
        if total_for(mid) < total:
            a = mid
        else:
            b = mid
    act = np.clip(np.round(lo + b * x), lo, cap).astype(np.int64)
    diff = total - int(act.sum())
    order = rng.permutation(n)
    while diff != 0:
        room = act[order] < cap if diff > 0 else act[order] > lo
        cand = order[room][: abs(diff)]
        if cand.size == 0:  # pragma: no cover - _check_spec makes this impossible
            raise ValueError(f"{spec}: cannot distribute {total:,} ratings")
        act[cand] += 1 if diff > 0 else -1
        diff = total - int(act.sum())
    return act


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    g = rng.standard_gamma(alpha) + 1e-12
    return g / g.sum(axis=1, keepdims=True)


def build_users(spec: SyntheticSpec, seed: int, pi: np.ndarray) -> Users:
    rng = _ss(seed, _SEQ_USERS)
    n = spec.n_users
    act = _activity(spec, rng)
    # arrivals spread over the collection period, density growing over time
    u = np.where(rng.random(n) < 0.75, rng.beta(1.6, 1.0, n), rng.random(n))
    t0 = first_ts(spec)
    start = t0 + (u * (END_TS - t0 - DAY)).astype(np.int64)
    # heavy raters are broader: flatter tastes and more "mainstream" draws
    breadth = np.clip((act / 120.0) ** BREADTH_EXP, 1.0, 6.0)
    alpha = np.maximum(TASTE_CONC * breadth[:, None] * pi[None, :], 1e-3)
    tau0 = _dirichlet_rows(rng, alpha)
    drift = rng.uniform(DRIFT_MIN, DRIFT_MAX, n)[:, None]
    tau1 = (1 - drift) * tau0 + drift * _dirichlet_rows(rng, alpha)
    mainstream = 1.0 - (1.0 - rng.beta(*MAINSTREAM_BETA, n)) / breadth
    bias = rng.normal(0.0, USER_BIAS_SD, n)
    half = rng.random(n) < 0.7
    # sessions: a long first one (a share of the ratings), the others after gaps of days to years
    sessions = 1 + rng.poisson((act / SESSION_RATINGS) ** SESSION_EXP)
    first_share = rng.beta(*FIRST_SHARE_BETA, n)
    gap_days = np.exp(rng.normal(math.log(GAP_DAYS), GAP_SIGMA, n))
    tie_p = rng.beta(*TIE_BETA, n)
    pace_s = np.exp(rng.normal(math.log(PACE_S), 0.5, n))
    # taggers: ~7% of users, heavier users more often; events heavy-tailed; ~6% tags per rating overall
    # (ML-32M: 2.0M tags for 32M ratings), after removing duplicate (user, movie, tag) rows
    p_tag = np.clip(0.055 * (act / 73.0) ** 0.5, 0, 0.6)
    tagger = rng.random(n) < p_tag
    wt = np.exp(rng.normal(0, 1.3, n)) * act**0.8 * tagger
    target_events = spec.n_ratings * TAGS_PER_RATING / 1.45
    events = np.floor(wt / max(wt.sum(), 1e-12) * target_events + rng.random(n)).astype(np.int64)
    events = np.where(tagger, np.clip(events, 1, act), 0)
    return Users(act, start, tau0.astype(np.float32), tau1.astype(np.float32), mainstream, breadth, drift[:, 0],
                 bias, half, sessions, first_share, gap_days, tie_p, pace_s, events, t0)


# --------------------------------------------------------------------------------------------------
# Item sampler
# --------------------------------------------------------------------------------------------------

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


def _order(key: np.ndarray) -> np.ndarray:
    """argsort of small non-negative int keys (ties by position), via one int64 sort (much faster)."""
    n = key.size
    bits = max(1, int(n - 1).bit_length())
    if int(key.max(initial=0)) >= 1 << (63 - bits):  # pragma: no cover - keys are small by construction
        return np.argsort(key, kind="stable")
    comp = np.sort((key.astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
    return comp & ((1 << bits) - 1)


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


def _categorical_rows(table: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per query from the (unnormalised) probability row `table[row]`."""
    cum = np.cumsum(table, axis=1)
    cum /= np.maximum(cum[:, -1:], 1e-300)
    k = table.shape[1]
    flat = (np.arange(cum.shape[0])[:, None] + cum).ravel()
    o = _order(row)
    pos = np.empty(row.size, dtype=np.int64)
    pos[o] = np.searchsorted(flat, row[o] + rng.random(row.size), side="right")
    return np.clip(pos - row * k, 0, k - 1)


# --------------------------------------------------------------------------------------------------
# Ratings per chunk of users
# --------------------------------------------------------------------------------------------------

# ML-32M-like rating distributions (0.5 .. 5.0 and whole stars 1 .. 5)
_HALF_P = np.array([0.016, 0.031, 0.017, 0.066, 0.053, 0.196, 0.131, 0.266, 0.088, 0.136])
_WHOLE_P = np.array([0.05, 0.11, 0.27, 0.35, 0.22])
_Q_SCALE, _BETA_AFF, _NOISE = 0.5, 0.45, 0.8


@dataclass
class _Chunk:
    user: np.ndarray  # global user index per rating
    item: np.ndarray  # movie index
    ts: np.ndarray
    code: np.ndarray  # rating code 0..9 -> (code + 1) / 2 stars (set by _Scale.codes)
    fallback: int
    z: np.ndarray  # latent rating score
    half_ok: np.ndarray  # the user uses half stars and they exist at that date

    def sort(self, movie_id: np.ndarray) -> None:
        """Rows by user, time, then movieId (equal timestamps: the order of the ratings table and the splits)."""
        # rows come sorted by user and time: only the movies of a page (equal timestamps) need reordering, so a
        # stable sort of (page, movieId) keys is nearly linear
        page = np.cumsum(np.r_[True, (self.user[1:] != self.user[:-1]) | (self.ts[1:] != self.ts[:-1])])
        o = np.argsort(page * (int(movie_id.max()) + 1) + movie_id[self.item], kind="stable")
        self.user, self.item, self.ts, self.z, self.half_ok = (
            self.user[o], self.item[o], self.ts[o], self.z[o], self.half_ok[o])



def _segment_cumsum(x: np.ndarray, first: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Cumulative sums of `x` restarting at each segment (`first[seg]`: the segment's first position)."""
    c = np.cumsum(x)
    return c - (c[first] - x[first])[seg]


def _timeline(
    users: Users, uid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per rating position: (local user, timestamp, drift position s in [0, 1], starts a run, in a returning
    session (not the user's first)).

    A user's potential sessions start at their arrival, then after gaps of `gap_days` x LogNormal(0, GAP_SIGMA);
    those that would start after the end of the data are censored (the user stopped being observed), and the
    ratings go to the others: `first_share` of them to the first session, the rest split at random. Within a
    session ratings come in pages: a rating shares its predecessor's timestamp with probability `tie_p`, else
    follows it after `pace_s` x LogNormal(0, 0.8) seconds."""
    n = users.activity[uid]
    nu = uid.size
    # ---- sessions (a few per user): censoring at the end of the data
    k_pot = np.minimum(users.sessions[uid], n)
    su = np.repeat(np.arange(nu), k_pot)
    s_first = np.concatenate([[0], np.cumsum(k_pot)[:-1]])
    k = np.arange(su.size) - s_first[su]
    gap = np.where(k == 0, 0.0, 3600.0 + rng.lognormal(0.0, GAP_SIGMA, su.size) * users.gap_days[uid][su] * DAY)
    start = users.start_ts[uid][su] + _segment_cumsum(gap, s_first, su)
    kept = (k == 0) | (start < END_TS - 3600)
    su, k, start = su[kept], k[kept], start[kept]
    n_sess = np.bincount(su, minlength=nu)
    s_first = np.concatenate([[0], np.cumsum(n_sess)[:-1]])
    # session sizes: >= 1 each, `first_share` of the rest to the first session, Gamma(2)-shares to the others
    share = rng.gamma(2.0, 1.0, su.size)
    later = np.bincount(su, weights=np.where(k > 0, share, 0.0), minlength=nu)
    fs = np.where(n_sess > 1, users.first_share[uid], 1.0)
    w = np.where(k == 0, fs[su], (1.0 - fs[su]) * share / np.maximum(later[su], 1e-12))
    cw = np.minimum(_segment_cumsum(w, s_first, su), 1.0)
    cw[np.concatenate([s_first[1:], [su.size]]) - 1] = 1.0  # each user's last session closes the cumsum
    c = np.round(cw * (n - n_sess)[su]).astype(np.int64)
    size = 1 + c - np.where(k == 0, 0, np.concatenate([[0], c[:-1]]))
    # ---- ratings: pages within sessions
    total = int(n.sum())
    sess = np.repeat(np.arange(su.size), size)
    local = su[sess]
    r_first = np.concatenate([[0], np.cumsum(size)[:-1]])
    p = np.arange(total) - r_first[sess]
    step = np.where(rng.random(total) < users.tie_p[uid][local], 0.0,
                    users.pace_s[uid][local] * rng.lognormal(0.0, 0.8, total))
    step[p == 0] = 0.0
    within = np.floor(_segment_cumsum(step, r_first, sess)).astype(np.int64)
    # sessions follow each other: a session starts after the previous one's end
    dur = within[np.concatenate([r_first[1:], [total]]) - 1]
    push = _segment_cumsum(np.where(k == 0, 0, np.concatenate([[0], dur[:-1]])), s_first, su)
    ts = start[sess].astype(np.int64) + push[sess] + within
    # a timeline that runs past the end of the data (a long last session) ends at its last second
    u_first = np.concatenate([[0], np.cumsum(n)[:-1]])
    over = np.maximum(ts[u_first + n - 1] - END_TS, 0)
    ts = np.maximum(ts - over[local], users.first_ts)
    j = np.arange(total) - u_first[local]
    s = (j / np.maximum(n[local] - 1, 1)).astype(np.float32)
    run = (p == 0) | (rng.random(total) < 1.0 / RUN_MEAN)
    return local, ts, s, run, k[sess] > 0


def _favourites(
    users: Users, smp: _Sampler, uid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user of the chunk, FAV_SLOTS favourite clusters, early (nu, L) and late (nu, L), with the slot
    weights (nu, L): a slot's early cluster is drawn from the early genre taste x the clusters' shares of
    their genre; with probability `drift` its late cluster is a new draw from the late taste."""
    nu, L = uid.size, FAV_SLOTS
    rows = np.repeat(np.arange(nu), L)
    share = smp.cluster_share[None, :]
    early = _categorical_rows(users.tau0[uid][:, smp.cluster_genre] * share, rows, rng).reshape(nu, L)
    new = _categorical_rows(users.tau1[uid][:, smp.cluster_genre] * share, rows, rng).reshape(nu, L)
    late = np.where(rng.random((nu, L)) < users.drift[uid][:, None], new, early)
    n_slots = np.clip(FAV_MIN + users.activity[uid] / FAV_PER_RATINGS, FAV_MIN, L)
    weight = rng.gamma(FAV_ALPHA * users.breadth[uid][:, None], 1.0, (nu, L)) + 1e-9
    weight *= np.arange(L)[None, :] < np.floor(n_slots)[:, None]
    weight /= weight.sum(axis=1, keepdims=True)
    return early, late, weight


def _pick_favourite(
    early: np.ndarray, late: np.ndarray, weight: np.ndarray, row: np.ndarray, s: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """A favourite cluster of user `row` at drift position `s` (late set with probability s)."""
    slot = _categorical_rows(weight, row, rng)
    return np.where(rng.random(row.size) < s, late[row, slot], early[row, slot])


def _chunk_ratings(
    cat: Catalogue, users: Users, smp: _Sampler, pi: np.ndarray, uid: np.ndarray, rng: np.random.Generator
) -> _Chunk:
    """Items, timestamps and ratings of the users `uid` (consecutive), deterministic for `rng`."""
    m = len(cat.movie_id)
    local, ts, s, run, returning = _timeline(users, uid, rng)
    total = ts.size
    # returning users rate what they have just watched: a share of their draws go to recent releases
    fresh = returning & (rng.random(total) < P_FRESH)
    day = ts // DAY
    nu = uid.size
    fav_early, fav_late, fav_w = _favourites(users, smp, uid, rng)
    # runs: consecutive ratings in one favourite cluster
    starts = np.flatnonzero(run)
    run_cluster = _pick_favourite(fav_early, fav_late, fav_w, local[starts], s[starts], rng)
    cluster = run_cluster[np.cumsum(run) - 1]
    loyalty = rng.beta(*LOYALTY_BETA, nu)
    # genre tables: row 0 = population mix; 1..U early tastes; U+1..2U late tastes
    gtab = np.concatenate([pi[None, :], users.tau0[uid], users.tau1[uid]]).astype(np.float64)
    main_p = users.mainstream[uid]

    item = np.full(total, -1, dtype=np.int64)
    seen = np.empty(0, dtype=np.int64)
    holes = np.arange(total)
    for src, depth in ROUNDS:
        if holes.size == 0:
            break
        hl = local[holes]
        hd = day[holes]
        hf = fresh[holes] & (src != "main")
        # mainstream draws (and every draw once the user's tastes are exhausted) follow the population mix
        main = (rng.random(holes.size) < main_p[hl]) | (src == "main")
        # loyal taste draws: the run's cluster or another favourite cluster
        loyal = ~main & (rng.random(holes.size) < loyalty[hl]) & (src in ("run", "fav"))
        cand = np.empty(holes.size, dtype=np.int64)
        if loyal.any():
            li = np.flatnonzero(loyal)
            if src == "run":
                cl = cluster[holes[li]]
            else:
                cl = _pick_favourite(fav_early, fav_late, fav_w, hl[li], s[holes[li]], rng)
            # in the second half of their sequence users go deeper into their clusters
            late_half = s[holes[li]] >= LATE_S
            for part, d in ((~late_half, depth), (late_half, max(depth, LATE_DEPTH))):
                if part.any():
                    cand[li[part]] = _draw_items(smp.clusters, cl[part], hd[li[part]], rng, d,
                                                 hf[li[part]])
        gi = np.flatnonzero(~loyal)
        if gi.size:
            late = rng.random(gi.size) < s[holes[gi]]
            row = np.where(main[gi], 0, np.where(late, 1 + nu + hl[gi], 1 + hl[gi]))
            genre = _categorical_rows(gtab, row, rng)
            cand[gi] = _draw_items(smp.genres, genre, hd[gi], rng, depth if src in ("genre", "main") else 1.0,
                                   hf[gi])
        key = hl.astype(np.int64) * m + cand
        ok = _accept(key, seen, rng)
        item[holes[ok]] = cand[ok]
        seen = np.sort(np.concatenate([seen, key[ok]]))
        holes = holes[~ok]
    fallback = int(holes.size)
    if holes.size:
        _fill_holes(cat, item, local, day, holes, rng)

    # ---- rating values: bias + quality + affinity (user's genre taste vs the population's, favourite clusters)
    gi_ = cat.genre_idx[item]
    gw = cat.genre_w[item] * (gi_ >= 0)
    g0 = gi_.clip(0)
    lu = local[:, None]
    tau = (1 - s[:, None]) * users.tau0[uid][lu, g0] + s[:, None] * users.tau1[uid][lu, g0]
    pref = (gw * tau).sum(axis=1)
    popn = (gw * pi[g0]).sum(axis=1)
    ic = cat.cluster[item]
    fav = np.zeros(total, dtype=np.float64)
    for k in range(FAV_SLOTS):
        wk = fav_w[local, k]
        fav += wk * ((1 - s) * (fav_early[local, k] == ic) + s * (fav_late[local, k] == ic))
    aff = np.clip(np.log((pref + 1e-3) / (popn + 1e-3)) + FAV_AFF * np.sqrt(fav), -2.5, 2.5)
    z = (users.bias[uid][local] + _Q_SCALE * cat.quality[item] + _BETA_AFF * aff
         + rng.normal(0.0, _NOISE, total))
    half_ok = users.half[uid][local] & (ts >= HALF_STARS_TS)
    return _Chunk(uid[local], item, ts, np.empty(0, dtype=np.int8), fallback, z, half_ok)


@dataclass(frozen=True)
class _Scale:
    """Score thresholds of the half-star and whole-star scales (calibrated on the first chunk's scores)."""

    half: np.ndarray
    whole: np.ndarray

    @classmethod
    def calibrate(cls, z: np.ndarray) -> _Scale:
        return cls(
            np.quantile(z, np.cumsum(_HALF_P / _HALF_P.sum())[:-1]),
            np.quantile(z, np.cumsum(_WHOLE_P / _WHOLE_P.sum())[:-1]),
        )

    def codes(self, z: np.ndarray, half_ok: np.ndarray) -> np.ndarray:
        """Rating code 0..9 (= stars * 2 - 1); whole stars map to odd codes."""
        return np.where(half_ok, np.searchsorted(self.half, z), 2 * np.searchsorted(self.whole, z) + 1).astype(np.int8)


def _fill_holes(
    cat: Catalogue, item: np.ndarray, local: np.ndarray, day: np.ndarray, holes: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Per hole (rare: heavy users who exhausted what their draws can reach): an unrated movie released by
    then, by sqrt-popularity; only if none is left, the earliest-released unrated movie."""
    m = len(cat.movie_id)
    weight = np.sqrt(cat.pop)
    by_release = np.argsort(cat.release_day, kind="stable")
    release_sorted = cat.release_day[by_release]
    for u in np.unique(local[holes]).tolist():
        mine = np.flatnonzero(local == u)
        rated = np.zeros(m, dtype=bool)
        rated[item[mine][item[mine] >= 0]] = True
        h = holes[local[holes] == u]
        for hole in h[np.argsort(day[h], kind="stable")].tolist():
            n_released = int(np.searchsorted(release_sorted, day[hole], side="right"))
            cand = by_release[:n_released]
            cand = cand[~rated[cand]]
            if cand.size:
                cw = np.cumsum(weight[cand])
                k = int(np.searchsorted(cw, rng.random() * cw[-1], side="right"))
                pick = int(cand[min(k, cand.size - 1)])
            else:
                pick = int(by_release[np.flatnonzero(~rated[by_release])[0]])
            item[hole] = pick
            rated[pick] = True


# --------------------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TagVocabulary:
    texts: list[str]
    keyword_tag: np.ndarray  # VOCABULARY keyword index -> tag index
    genre_ptr: np.ndarray  # (G + 1,) offsets into genre_tags
    genre_tags: np.ndarray
    general: np.ndarray


def _tag_vocabulary() -> _TagVocabulary:
    texts: list[str] = []
    index: dict[str, int] = {}

    def idx(t: str) -> int:
        if t not in index:
            index[t] = len(texts)
            texts.append(t)
        return index[t]

    kw_tag = np.array([idx(n) for n in VOCABULARY.names], dtype=np.int64)
    g_lists = [[idx(t) for t in LEXICON[g].tags] for g in LATENT_GENRES]
    g_ptr = np.concatenate([[0], np.cumsum([len(x) for x in g_lists])]).astype(np.int64)
    g_flat = np.array([i for x in g_lists for i in x], dtype=np.int64)
    general = np.array([idx(t) for t in GENERAL_TAGS], dtype=np.int64)
    return _TagVocabulary(texts, kw_tag, g_ptr, g_flat, general)


def _chunk_tags(
    chunk: _Chunk, users: Users, cat: Catalogue, kw_ptr: np.ndarray, kw_idx: np.ndarray, voc: _TagVocabulary,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, movie index, tag index, timestamp) rows, deduplicated, sorted by user, time."""
    ev = users.tag_events[chunk.user]
    pos = np.flatnonzero(ev > 0)
    if pos.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e, e
    # choose tag_events[u] random rated positions per tagger
    r = rng.random(pos.size)
    order = np.lexsort((r, chunk.user[pos]))
    pu = chunk.user[pos][order]
    first = np.concatenate([[0], np.flatnonzero(np.diff(pu)) + 1])
    rank = np.arange(pu.size) - np.repeat(first, np.diff(np.concatenate([first, [pu.size]])))
    sel = pos[order][rank < users.tag_events[pu]]
    n_per = 1 + (rng.random(sel.size) < 0.3) + (rng.random(sel.size) < 0.15)
    ev_pos = np.repeat(sel, n_per)
    n = ev_pos.size
    mv = chunk.item[ev_pos]
    src = rng.random(n)
    # keyword of the movie
    k0, k1 = kw_ptr[mv], kw_ptr[mv + 1]
    has_kw = k1 > k0
    kpick = k0 + (rng.random(n) * np.maximum(k1 - k0, 1)).astype(np.int64)
    tag_kw = voc.keyword_tag[kw_idx[np.minimum(kpick, kw_idx.size - 1)]]
    # descriptor of one of the movie's genres
    gcol = (rng.random(n) * (cat.genre_idx[mv] >= 0).sum(axis=1)).astype(np.int64)
    g = cat.genre_idx[mv, gcol]
    a, b = voc.genre_ptr[g], voc.genre_ptr[g + 1]
    tag_g = voc.genre_tags[a + (rng.random(n) * (b - a)).astype(np.int64)]
    tag_gen = voc.general[rng.integers(0, voc.general.size, n)]
    tag = np.where((src < 0.45) & has_kw, tag_kw, np.where(src < 0.8, tag_g, tag_gen))
    ts = chunk.ts[ev_pos] + rng.integers(5, 900, n)
    late = rng.random(n) < 0.08
    ts = np.where(late, ts + rng.integers(DAY, 400 * DAY, n), ts)
    ts = np.minimum(ts, END_TS)
    user = chunk.user[ev_pos]
    key = (user * (len(cat.movie_id) + 1) + mv) * (len(voc.texts) + 1) + tag
    _, keep = np.unique(key, return_index=True)
    user, mv, tag, ts = user[keep], mv[keep], tag[keep], ts[keep]
    o = np.lexsort((tag, mv, ts, user))
    return user[o], mv[o], tag[o], ts[o]


# --------------------------------------------------------------------------------------------------
# Fast CSV formatting
# --------------------------------------------------------------------------------------------------

_RATING_TXT = np.frombuffer(b"".join(f"{(c + 1) / 2:.1f}".encode() for c in range(10)), dtype=np.uint8).reshape(10, 3)


def _int_chars(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(v, dtype=np.int64)
    width = max(1, len(str(int(v.max())))) if v.size else 1
    pw = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = ((v[:, None] // pw) % 10 + 48).astype(np.uint8)
    nd = np.searchsorted(10 ** np.arange(1, width, dtype=np.int64), v, side="right") + 1
    valid = np.arange(width)[None, :] >= (width - nd)[:, None]
    return chars, valid


def _const(n: int, b: bytes) -> tuple[np.ndarray, np.ndarray]:
    arr = np.broadcast_to(np.frombuffer(b, dtype=np.uint8), (n, len(b)))
    return arr, np.ones((n, len(b)), dtype=bool)


def format_ratings(user_id: np.ndarray, movie_id: np.ndarray, code: np.ndarray, ts: np.ndarray) -> bytes:
    """CSV body lines `userId,movieId,rating,timestamp\\n` (rating with one decimal), vectorised."""
    out = []
    n = user_id.size
    step = 400_000
    for a in range(0, n, step):
        b = min(n, a + step)
        k = b - a
        parts = [
            _int_chars(user_id[a:b]), _const(k, b","), _int_chars(movie_id[a:b]), _const(k, b","),
            (_RATING_TXT[code[a:b]], np.ones((k, 3), dtype=bool)), _const(k, b","), _int_chars(ts[a:b]),
            _const(k, b"\n"),
        ]
        chars = np.concatenate([p[0] for p in parts], axis=1)
        valid = np.concatenate([p[1] for p in parts], axis=1)
        out.append(chars[valid].tobytes())
    return b"".join(out)


# --------------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------------

CHUNK_RATINGS = 1_000_000


def _chunks(activity: np.ndarray) -> list[tuple[int, int]]:
    bounds = []
    cum = np.cumsum(activity)
    start = 0
    while start < activity.size:
        base = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, base + CHUNK_RATINGS, side="right"))
        end = max(end, start + 1)
        bounds.append((start, end))
        start = end
    return bounds


def _read_marker(out_dir: Path) -> dict[str, Any] | None:
    p = out_dir / MARKER
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def generate_movielens(
    spec: SyntheticSpec,
    out_dir: Path,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    tmdb_payloads: bool = True,
) -> dict[str, Any]:
    """Generate the dataset into `out_dir` (atomically) and return summary statistics.

    `out_dir` is dedicated to the dataset: it is built as a temporary sibling and renamed onto `out_dir`,
    replacing whatever was there, only once complete. Skips the work when `out_dir/_SYNTHETIC.json` records
    the same spec, seed and generator version (and the files, including the TMDb payloads when requested,
    are present); the returned dict then has `cached: True`. `progress` gets human-readable lines.
    """
    out_dir = Path(out_dir)
    try:
        ok = not isinstance(seed, bool) and operator.index(seed) >= 0
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = operator.index(seed)
    _check_spec(spec)
    say = progress or (lambda _msg: None)
    marker = _read_marker(out_dir)
    if (
        marker is not None
        and marker.get("spec") == asdict(spec)
        and marker.get("seed") == seed
        and marker.get("version") == GENERATOR_VERSION
        and all((out_dir / f).is_file() for f in FILES)
        and (not tmdb_payloads or (marker.get("tmdb_payloads") and (out_dir / TMDB_FILE).is_file()))
    ):
        say(f"{spec.name} (seed {seed}) already generated in {out_dir}; skipping")
        return dict(marker["stats"], cached=True)

    t_start = time.perf_counter()
    say(f"generating {spec.name}: {spec.n_ratings:,} ratings, {spec.n_users:,} users, {spec.n_movies:,} movies "
        f"(seed {seed}) into {out_dir}")
    cat = build_catalogue(spec, seed)
    smp = _build_sampler(cat, (first_ts(spec) // DAY, END_TS // DAY))
    pi = population_mix(cat)
    users = build_users(spec, seed, pi)
    kw_ptr, kw_idx = movie_keywords(cat, seed)
    tagvoc = _tag_vocabulary()
    m = spec.n_movies
    counts = np.zeros(m, dtype=np.int64)
    sums = np.zeros(m, dtype=np.float64)
    hist = np.zeros(10, dtype=np.int64)
    n_tags = 0
    n_early = n_ties = n_new = 0
    fallback = 0
    ts_min, ts_max = END_TS, START_TS
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        with open(tmp / "ratings.csv", "wb") as rf, open(tmp / "tags.csv", "w", encoding="utf-8", newline="") as tf:
            rf.write(b"userId,movieId,rating,timestamp\n")
            tw = csv.writer(tf, lineterminator="\n")
            tw.writerow(["userId", "movieId", "tag", "timestamp"])
            done = 0
            t_r = time.perf_counter()
            bounds = _chunks(users.activity)
            scale: _Scale | None = None
            for ci, (a, b) in enumerate(bounds):
                rng = _ss(seed, _SEQ_CHUNK, ci)
                ch = _chunk_ratings(cat, users, smp, pi, np.arange(a, b), rng)
                ch.sort(cat.movie_id)
                if scale is None:
                    scale = _Scale.calibrate(ch.z)
                ch.code = scale.codes(ch.z, ch.half_ok)
                fallback += ch.fallback
                rf.write(format_ratings(ch.user + 1, cat.movie_id[ch.item], ch.code, ch.ts))
                counts += np.bincount(ch.item, minlength=m)
                sums += np.bincount(ch.item, weights=(ch.code.astype(np.float64) + 1) / 2, minlength=m)
                hist += np.bincount(ch.code, minlength=10)
                age = ch.ts // DAY - cat.release_day[ch.item]
                n_early += int((age < 0).sum())
                n_new += int((age < 90).sum())
                n_ties += int(((ch.user[1:] == ch.user[:-1]) & (ch.ts[1:] == ch.ts[:-1])).sum())
                ts_min, ts_max = min(ts_min, int(ch.ts.min())), max(ts_max, int(ch.ts.max()))
                tu, tm, tt, tts = _chunk_tags(ch, users, cat, kw_ptr, kw_idx, tagvoc, _ss(seed, _SEQ_TAGS, ci))
                texts = tagvoc.texts
                tw.writerows(zip((tu + 1).tolist(), cat.movie_id[tm].tolist(), [texts[i] for i in tt.tolist()],
                                 tts.tolist(), strict=True))
                n_tags += tu.size
                done += ch.ts.size
                if ci % 4 == 3 or ci == len(bounds) - 1:
                    dt = time.perf_counter() - t_r
                    say(f"ratings: {done:,}/{spec.n_ratings:,} ({100 * done / spec.n_ratings:.0f}%), users "
                        f"{b:,}/{spec.n_users:,}, {done / max(dt, 1e-9):,.0f} ratings/s, tags {n_tags:,}")
        _write_movies(cat, tmp / "movies.csv")
        _write_links(cat, tmp / "links.csv")
        n_payloads = 0
        if tmdb_payloads:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            n_payloads = write_tmdb_payloads(cat, tmp / TMDB_FILE, seed, rating_counts=counts,
                                             rating_means=means, progress=say)
        act = users.activity
        top = np.sort(counts)[::-1]
        k10 = max(1, int(round(0.1 * m)))
        stats = {
            "name": spec.name,
            "n_ratings": int(done),
            "n_users": int(spec.n_users),
            "n_movies": int(m),
            "n_rated_movies": int((counts > 0).sum()),
            "n_tags": int(n_tags),
            "n_taggers": int((users.tag_events > 0).sum()),
            "n_links": int(m),
            "n_missing_tmdb": int((cat.tmdb_id < 0).sum()),
            "n_tmdb_payloads": int(n_payloads),
            "top10_share": round(float(top[:k10].sum() / max(top.sum(), 1)), 4),
            "top10_share_bound": round(float(np.minimum(act, k10).sum() / act.sum()), 4),
            "movies_with_le5_ratings": int((counts <= 5).sum()),
            "activity_min": int(act.min()),
            "activity_median": float(np.median(act)),
            "activity_mean": round(float(act.mean()), 2),
            "activity_max": int(act.max()),
            "rating_mean": round(float((hist * (np.arange(10) + 1) / 2).sum() / hist.sum()), 4),
            "rating_hist": {f"{(c + 1) / 2:.1f}": int(hist[c]) for c in range(10)},
            "first_timestamp": ts_min,
            "last_timestamp": ts_max,
            "ratings_before_release": int(n_early),
            "span_days": span_days(spec.n_ratings),
            "tie_share": round(n_ties / max(done, 1), 4),
            "new_release_share": round(n_new / max(done, 1), 4),
            "fallback_draws": int(fallback),
            "seconds": round(time.perf_counter() - t_start, 2),
        }
        marker = {
            "generator": __name__,
            "version": GENERATOR_VERSION,
            "spec": asdict(spec),
            "seed": seed,
            "tmdb_payloads": bool(tmdb_payloads),
            "stats": stats,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    say(f"{spec.name}: done in {stats['seconds']:.1f}s (top-10% share {stats['top10_share']:.3f}, "
        f"activity median {stats['activity_median']:.0f} / mean {stats['activity_mean']:.1f}, "
        f"rating mean {stats['rating_mean']:.3f}, {n_tags:,} tags)")
    return dict(stats, cached=False)


def _write_movies(cat: Catalogue, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["movieId", "title", "genres"])
    w.writerows(zip(cat.movie_id.tolist(), cat.title, cat.listed, strict=True))
    path.write_text(buf.getvalue(), encoding="utf-8")


def _write_links(cat: Catalogue, path: Path) -> None:
    lines = ["movieId,imdbId,tmdbId\n"]
    for mid, imdb, tmdb in zip(cat.movie_id.tolist(), cat.imdb_id.tolist(), cat.tmdb_id.tolist(), strict=True):
        lines.append(f"{mid},{imdb:07d},{tmdb if tmdb >= 0 else ''}\n")
    path.write_text("".join(lines), encoding="utf-8")
