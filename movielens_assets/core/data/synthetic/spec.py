"""Dataset specs and names (`SyntheticSpec`, `PRESETS`, `parse_synthetic_name`), the collection period
(`span_days`, `first_ts`), the generator version and the fixed constants and seeds of every stream.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.tmdb_words import LATENT_GENRES

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
