"""The movie catalogue: genres, taste clusters and niches, release dates, popularity law and its
rise and fade (`LIFECYCLES`, `age_profiles`), quality, countries, franchises, titles, movieIds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.draw import _categorical_rows
from movielens_assets.core.data.synthetic.spec import (
    _SEQ_CATALOGUE,
    _SEQ_DYNAMICS,
    DAY,
    ML32M_MOVIES,
    NO_GENRES,
    START_TS,
    SyntheticSpec,
    _ss,
)
from movielens_assets.core.data.synthetic.tmdb_words import (
    COUNTRIES,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    GENERIC_TITLE_ADJ,
    GENERIC_TITLE_NOUN,
    GENRE_INDEX,
    LATENT_GENRES,
    LEXICON,
    N_GENRES,
    ORIGINAL_TITLE_PARTS,
    PLACE_NAMES,
)

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
