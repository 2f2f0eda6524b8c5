"""Deterministic synthetic MovieLens datasets in the exact ML-32M CSV format.

`generate_movielens(spec, out_dir, seed)` writes `ratings.csv`, `movies.csv`, `tags.csv`, `links.csv`
(+ `tmdb/movie_details.jsonl.gz`, see `synthetic.tmdb`) and `_SYNTHETIC.json`, atomically. Same spec +
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
  What that gives per preset (shared timestamps, short gaps, ratings on the first day, session lengths):
  docs/SYNTHETIC.md, "Realism: recall channels on synthetic vs real data" (generator statistics).
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

Why 3.0: generator 2.0 was much easier than real data for collaborative models (~95% loyalty to a few taste
clusters) and had no time dynamics that ranking depends on: popularity was static, and each user's ratings,
so their last_n holdout, sat anywhere in 1995-2023, so that the 90 days before the last training timestamp
were "recent" for almost nobody (popularity_recent far worse than all-time popularity). 3.0 makes tastes
noisier (loyalty ~50%, flatter favourite weights, more mainstream draws, a wider head for small
catalogues) and adds time: a collection period per size (small datasets, like the real releases of their
size, were gathered within months, so "recent" is recent for everyone), popularity that rises and fades
with a movie's age, sessions with censoring at the end of the data, and returning users rating new
releases (`P_FRESH`: their last sessions, hence their holdouts, lean to what is new at that date). Left out:
concentrating the users' activity at the end of the data (an artificial surge at the cut that favours any
recency method) and tuning the channels (the data must fail where real data fails). The measurements behind
this (the pipeline's channels on real MovieLens-100K and on synthetic-tiny / -small / -1m, 2.0 and 3.0, seed
42 and others; the global_time user counts) are in docs/SYNTHETIC.md, "Why 3.0" and "Realism: recall
channels on synthetic vs real data"; `benchmarks/synthetic_realism.py` regenerates them (its "Commands").

Size presets (`parse_synthetic_name`): see `PRESETS`. Generic `synthetic-<N>k|m`: N thousand/million
ratings, users = round(N / 159.25) (ML-32M's ratings per user), movies = round(87,585 * (N / 32,000,204)
** (2/3)) (sub-linear: smaller datasets have denser catalogues), at least 100.

Structural limit: a user rates a movie at most once, so the top-10% share of ratings cannot exceed the
share that fits in the top 10% of movies given the activity law (`top10_share_bound` in the stats).
synthetic-32m's top-10% share is close to ML-32M's; smaller presets are less concentrated, their popularity
head being wider as well (the shares: docs/SYNTHETIC.md, "Realism: recall channels on synthetic vs real data"
and "synthetic-32m generation"). synthetic-32m's generation time and peak memory (and what the age-banded
draws cost): docs/SYNTHETIC.md, "synthetic-32m generation".

Modules (package `core.data.synthetic`): `spec` (specs, presets, names, collection period, constants),
`catalogue` (movies and their popularity lifecycles), `users`, `sampler` (item draws), `draw` (shared draw
helpers), `ratings` (per chunk of users), `tags`, `write` (CSV formatting and `generate_movielens`);
TMDb side: `tmdb_words` (word lists and reference data), `tmdb_vocab` (keyword vocabulary), `tmdb`
(payloads, `write_tmdb_payloads` / `iter_tmdb_payloads`).
"""

from __future__ import annotations

from movielens_assets.core.data.synthetic.catalogue import (
    AGE_EDGES,
    LIFECYCLES,
    Catalogue,
    age_profiles,
    build_catalogue,
)
from movielens_assets.core.data.synthetic.spec import (
    DAY,
    END_TS,
    FILES,
    GENERATOR_VERSION,
    HALF_STARS_TS,
    MARKER,
    ML_GENRES,
    NO_GENRES,
    PRESETS,
    START_TS,
    SyntheticSpec,
    first_ts,
    movies_for_ratings,
    parse_synthetic_name,
    span_days,
    users_for_ratings,
)
from movielens_assets.core.data.synthetic.tmdb import TMDB_FILE, iter_tmdb_payloads
from movielens_assets.core.data.synthetic.users import Users, build_users
from movielens_assets.core.data.synthetic.write import CHUNK_RATINGS, format_ratings, generate_movielens

__all__ = [
    "AGE_EDGES",
    "CHUNK_RATINGS",
    "Catalogue",
    "DAY",
    "END_TS",
    "FILES",
    "GENERATOR_VERSION",
    "HALF_STARS_TS",
    "LIFECYCLES",
    "MARKER",
    "ML_GENRES",
    "NO_GENRES",
    "PRESETS",
    "START_TS",
    "SyntheticSpec",
    "TMDB_FILE",
    "Users",
    "age_profiles",
    "build_catalogue",
    "build_users",
    "first_ts",
    "format_ratings",
    "generate_movielens",
    "iter_tmdb_payloads",
    "movies_for_ratings",
    "parse_synthetic_name",
    "span_days",
    "users_for_ratings",
]
