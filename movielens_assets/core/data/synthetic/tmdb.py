"""Synthetic TMDb v3 movie-detail payloads for the movies of a synthetic MovieLens catalogue.

One JSON object per movie with a tmdbId, in the shape of
`GET /3/movie/{id}?append_to_response=credits,keywords,release_dates&language=en-US`
(see `shared/reference/tmdb-api.md` §2.1–2.3): every documented top-level field with its type,
`credits {cast, crew}`, `keywords {keywords}`, `release_dates {results}`; appended blocks carry no `id`.

The text and the people carry the catalogue's latent genre profile, so that text embeddings and
person/keyword features have signal:
- persons (cast and crew) have a genre specialty and are drawn, by popularity, from the specialists of
  a genre sampled from the movie's profile; a person id always has the same name, gender and department;
- keywords come from genre-specific vocabularies (plus a general one), with stable ids;
- overviews and taglines are built from genre-specific phrases (roles, places, threats, goals).

The lexicons, which the MovieLens side uses too (title words, tag vocabularies, so that tags relate
to the same keywords), are in `tmdb_words`; the keyword vocabulary in `tmdb_vocab`. Streams: bounded
memory whatever the catalogue size.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movielens_assets.core.data.synthetic.tmdb_vocab import VOCABULARY, _sample_genre, movie_keywords
from movielens_assets.core.data.synthetic.tmdb_words import (
    CERTIFICATIONS,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    COUNTRIES,
    FESTIVALS,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    GENRE_INDEX,
    LANGUAGES,
    LAST_NAMES,
    LATENT_GENRES,
    LEXICON,
    ML_TO_TMDB_GENRES,
    N_GENRES,
    TMDB_GENRES,
)

if TYPE_CHECKING:  # pragma: no cover
    from movielens_assets.core.data.synthetic.catalogue import Catalogue


TMDB_FILE = Path("tmdb") / "movie_details.jsonl.gz"


_MATURITY = np.array(
    # Action Adv Anim Child Com Crime Doc Drama Fant Noir Horror Mus Myst Rom SciFi Thr War West
    [2, 1, 0, 0, 1, 3, 1, 2, 1, 2, 3, 0, 2, 1, 2, 3, 3, 2], dtype=np.int8
)

# Crew roles: (pool key, department, job, known_for_department)
_ROLE_POOLS = ("Acting", "Directing", "Writing", "Production", "Sound", "Camera", "Editing", "Casting")
_POOL_SIZE_PER_MOVIE = {  # persons per catalogue movie in each pool (with a floor)
    "Acting": 1.5, "Directing": 0.3, "Writing": 0.35, "Production": 0.35, "Sound": 0.06,
    "Camera": 0.08, "Editing": 0.08, "Casting": 0.04,
}
_KNOWN_FOR = {
    "Acting": "Acting", "Directing": "Directing", "Writing": "Writing", "Production": "Production",
    "Sound": "Sound", "Camera": "Camera", "Editing": "Editing", "Casting": "Production",
}


# --------------------------------------------------------------------------------------------------
# Persons and companies
# --------------------------------------------------------------------------------------------------


@dataclass
class _Persons:
    ids: np.ndarray
    names: list[str]
    gender: np.ndarray
    popularity: np.ndarray
    profile: list[str | None]
    pool: np.ndarray  # index into _ROLE_POOLS
    n_niches: int
    # sampling structure: persons sorted by (pool, specialty genre, specialty niche); cumulative popularity
    order: np.ndarray
    cum: np.ndarray
    seg_start: np.ndarray  # flat: segment (p, g, k) = [seg[(p*G+g)*K+k], ... + 1) positions into `order`


def _random_paths(rng: np.random.Generator, n: int, ext: str) -> list[str]:
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    chars = alphabet[rng.integers(0, alphabet.size, (n, 27))]
    raw = chars.tobytes()
    return [f"/{raw[i * 27:(i + 1) * 27].decode()}{ext}" for i in range(n)]


def _unique_ids(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """`n` distinct increasing ints in [lo, hi) with random gaps."""
    gap = max(1, (hi - lo) // max(n, 1))
    steps = 1 + rng.integers(0, 2 * gap - 1, n) if gap > 1 else np.ones(n, dtype=np.int64)
    ids = lo + np.cumsum(steps) - 1
    if ids.size and ids[-1] >= hi:
        ids = lo + np.arange(n)
    return ids.astype(np.int64)


def _build_persons(n_movies: int, n_niches: int, rng: np.random.Generator, genre_share: np.ndarray) -> _Persons:
    K = n_niches
    sizes = [max(2 * N_GENRES * K, int(round(_POOL_SIZE_PER_MOVIE[p] * n_movies))) for p in _ROLE_POOLS]
    pool = np.repeat(np.arange(len(_ROLE_POOLS)), sizes)
    n = pool.size
    # specialty (genre, niche): every cell has specialists in every pool; the rest follows the genre shares
    spec = rng.choice(N_GENRES, size=n, p=genre_share)
    spec_niche = rng.integers(0, K, n)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for p in range(len(_ROLE_POOLS)):
        cells = np.arange(N_GENRES * K)
        spec[starts[p]:starts[p] + cells.size] = cells // K
        spec_niche[starts[p]:starts[p] + cells.size] = cells % K
    popularity = np.round(0.6 + rng.pareto(2.2, n) * 3.0, 3)
    gender = np.where(rng.random(n) < 0.45, 1, 2)
    crew = pool != 0
    gender = np.where(crew & (rng.random(n) < 0.65), 2, gender)
    r = rng.random(n)
    gender = np.where(r < 0.06, 0, np.where(r > 0.997, 3, gender))
    first_m = rng.integers(0, len(FIRST_NAMES_M), n)
    first_f = rng.integers(0, len(FIRST_NAMES_F), n)
    female = (gender == 1) | ((gender != 2) & (rng.random(n) < 0.5))
    last = rng.integers(0, len(LAST_NAMES), n)
    names = [
        f"{FIRST_NAMES_F[ff] if fe else FIRST_NAMES_M[fm]} {LAST_NAMES[la]}"
        for fe, ff, fm, la in zip(female.tolist(), first_f.tolist(), first_m.tolist(), last.tolist(), strict=True)
    ]
    ids = _unique_ids(rng, n, 1, max(5_000_000, 30 * n))
    ids = ids[rng.permutation(n)]
    has_profile = rng.random(n) < np.clip(0.35 + popularity / 8, 0, 0.98)
    paths = _random_paths(rng, n, ".jpg")
    profile = [p if h else None for p, h in zip(paths, has_profile.tolist(), strict=True)]
    order = np.lexsort((np.arange(n), spec_niche, spec, pool))
    key = (pool[order] * N_GENRES + spec[order]) * K + spec_niche[order]
    seg_start = np.searchsorted(key, np.arange(len(_ROLE_POOLS) * N_GENRES * K + 1), side="left")
    weight = popularity[order] ** 1.5
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    return _Persons(ids, names, gender, popularity, profile, pool, K, order, cum, seg_start)


def _pick_persons(
    persons: _Persons, pool: int, genre: np.ndarray, niche: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A person of `pool` per row, by popularity among the specialists of (genre, niche) (60%) or of the genre."""
    K = persons.n_niches
    # 8% of the picks leave the movie's genres (people do not only work in their specialty)
    genre = np.where(rng.random(genre.size) < 0.08, rng.integers(0, N_GENRES, genre.size), genre)
    base = (pool * N_GENRES + genre) * K
    exact = rng.random(genre.size) < 0.6
    lo = persons.seg_start[np.where(exact, base + niche, base)]
    hi = persons.seg_start[np.where(exact, base + niche + 1, base + K)]
    x = persons.cum[lo] + rng.random(genre.size) * (persons.cum[hi] - persons.cum[lo])
    pos = np.clip(np.searchsorted(persons.cum, x, side="right") - 1, lo, hi - 1)
    return persons.order[pos]


@dataclass
class _Companies:
    ids: np.ndarray
    names: list[str]
    country: np.ndarray
    logo: list[str | None]


def _build_companies(n_movies: int, rng: np.random.Generator) -> _Companies:
    n = max(40, n_movies // 8)
    share = np.array([c[3] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=share / share.sum())
    w = rng.integers(0, len(COMPANY_WORDS), n)
    s = rng.integers(0, len(COMPANY_SUFFIXES), n)
    names = []
    seen: dict[str, int] = {}
    for i in range(n):
        base = f"{COMPANY_WORDS[w[i]]} {COMPANY_SUFFIXES[s[i]]}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        names.append(base if k == 0 else f"{base} {['II', 'III', 'International', 'Group', 'Co.'][k % 5]}"
                     + ("" if k < 5 else f" {k}"))
    ids = _unique_ids(rng, n, 1, max(200_000, 10 * n))[rng.permutation(n)]
    logos = _random_paths(rng, n, ".png")
    has = rng.random(n) < 0.6
    return _Companies(ids, names, country, [p if h else None for p, h in zip(logos, has.tolist(), strict=True)])


# --------------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------------

_CHUNK = 2048


def _credit_ids(rng: np.random.Generator, counter0: int, n: int) -> list[str]:
    """24-hex credit ids, unique across the file: a global counter is encoded in the first and last fields."""
    c = counter0 + np.arange(n, dtype=np.int64)
    hi = c >> 24
    ts = 0x50000000 + hi * 0x100000 + rng.integers(0, 0x100000, n)
    mid = rng.integers(0, 1 << 40, n)
    low = (c & 0xFFFFFF).tolist()
    return [f"{a:08x}{b:010x}{d:06x}" for a, b, d in zip(ts.tolist(), mid.tolist(), low, strict=True)]


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _overview(
    rng: np.random.Generator, genres: list[int], name: str, blank: bool, niche: int, n_niches: int
) -> tuple[str, str]:
    """(overview, tagline) from genre-specific phrases: two sentences of the primary genre, one of the next.
    With several niches, half of the slot fillers are the ones typical of the movie's niche."""
    if blank:
        return "", ""

    def pick(options: tuple[str, ...]) -> str:
        if n_niches > 1 and rng.random() < 0.5:
            return options[niche % len(options)]
        return options[int(rng.integers(0, len(options)))]

    lex = LEXICON[LATENT_GENRES[genres[0]]]
    picks = rng.permutation(len(lex.templates))[:2].tolist()
    sentences = [lex.templates[i] for i in sorted(picks)]
    if len(genres) > 1:
        lex2 = LEXICON[LATENT_GENRES[genres[1]]]
        sentences.append(lex2.templates[int(rng.integers(0, len(lex2.templates)))])
    out = []
    for k, s in enumerate(sentences):
        lx = lex if k < 2 else LEXICON[LATENT_GENRES[genres[1]]]
        text = s.format(name=name, role=pick(lx.roles), place=pick(lx.places), threat=pick(lx.threats),
                        goal=pick(lx.goals))
        out.append(text[0].upper() + text[1:])
    tagline = lex.taglines[int(rng.integers(0, len(lex.taglines)))] if rng.random() < 0.55 else ""
    return " ".join(out), tagline


def _person_obj(p: _Persons, i: int, known_for: str) -> dict[str, Any]:
    name = p.names[i]
    return {
        "adult": False,
        "gender": int(p.gender[i]),
        "id": int(p.ids[i]),
        "known_for_department": known_for,
        "name": name,
        "original_name": name,
        "popularity": float(p.popularity[i]),
        "profile_path": p.profile[i],
    }


def write_tmdb_payloads(
    cat: Catalogue,
    path: Path,
    seed: int,
    *,
    rating_counts: np.ndarray | None = None,
    rating_means: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write one TMDb movie-details JSON per catalogue movie with a tmdbId to `path` (gzip JSONL).

    `rating_counts` / `rating_means` (per catalogue movie, from the generated ratings) make `vote_count`
    and `vote_average` consistent with the MovieLens side. Streams in chunks of movies; returns the
    number of payloads. The gzip header carries no name or mtime, so the bytes are deterministic.
    """

    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 61]))
    m = len(cat.movie_id)
    genre_share = np.bincount(cat.genre_idx[:, 0], minlength=N_GENRES).astype(float) + 1.0
    persons = _build_persons(m, int(cat.n_niches), rng, genre_share / genre_share.sum())
    companies = _build_companies(m, rng)
    kw_ptr, kw_idx = movie_keywords(cat, seed)
    comp_by_country = [np.flatnonzero(companies.country == c) for c in range(len(COUNTRIES))]
    paths_rng = np.random.default_rng(np.random.SeedSequence([seed, 62]))
    collection_paths: dict[int, tuple[str | None, str | None]] = {}
    counts = rating_counts if rating_counts is not None else np.zeros(m)
    means = rating_means if rating_means is not None else np.full(m, np.nan)

    todo = np.flatnonzero(cat.tmdb_id >= 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    counter = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=4, mtime=0, filename="") as gz:
        buf = io.TextIOWrapper(gz, encoding="utf-8", newline="\n", write_through=False)
        for c0 in range(0, todo.size, _CHUNK):
            mov = todo[c0:c0 + _CHUNK]
            crng = np.random.default_rng(np.random.SeedSequence([seed, 63, c0 // _CHUNK]))
            lines, counter = _chunk_payloads(
                cat, mov, crng, persons, companies, comp_by_country, kw_ptr, kw_idx, counts, means,
                counter, paths_rng, collection_paths,
            )
            buf.write("".join(lines))
            written += len(lines)
            if progress is not None and (c0 // _CHUNK) % 8 == 7:
                rate = written / max(time.perf_counter() - t0, 1e-9)
                progress(f"tmdb payloads: {written:,}/{todo.size:,} movies ({rate:,.0f} movies/s)")
        buf.flush()
        buf.detach()
    if progress is not None:
        dt = time.perf_counter() - t0
        progress(f"tmdb payloads: {written:,} movies written in {dt:.1f}s ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return written


def _chunk_payloads(
    cat: Catalogue,
    mov: np.ndarray,
    rng: np.random.Generator,
    persons: _Persons,
    companies: _Companies,
    comp_by_country: list[np.ndarray],
    kw_ptr: np.ndarray,
    kw_idx: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    counter: int,
    paths_rng: np.random.Generator,
    collection_paths: dict[int, tuple[str | None, str | None]],
) -> tuple[list[str], int]:
    n = mov.size
    lvl = cat.pop_level[mov]
    docu = cat.genre_idx[mov, 0] == GENRE_INDEX["Documentary"]
    # ---- cast
    n_cast = np.clip(3 + rng.poisson(3 + 9 * lvl), 2, 40)
    n_cast = np.where(docu, np.clip(n_cast // 3, 1, 6), n_cast)
    owner = np.repeat(np.arange(n), n_cast)
    cast_p = _pick_persons(persons, 0, _sample_genre(cat, mov[owner], rng), cat.niche[mov[owner]], rng)
    key = owner.astype(np.int64) * persons.ids.size + cast_p
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(owner.size, dtype=bool)
    keep[first] = True
    owner, cast_p = owner[keep], cast_p[keep]
    cast_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))])
    char_r = rng.random((cast_p.size, 4))
    # ---- crew: (pool, department, job) slots
    slots: list[tuple[int, str, str, np.ndarray]] = []
    n_dir = 1 + (rng.random(n) < 0.06)
    prim = cat.genre_idx[mov, 0].astype(np.int64)
    niche = cat.niche[mov]
    for k in range(2):
        has = n_dir > k
        slots.append((1, "Directing", "Director", np.where(has, _pick_persons(persons, 1, prim, niche, rng), -1)))
    directors = slots[0][3]
    writer_jobs = ("Screenplay", "Writer", "Novel", "Story")
    wjob = rng.choice(len(writer_jobs), size=n, p=[0.5, 0.3, 0.12, 0.08])
    for j, job in enumerate(writer_jobs):
        has = (wjob == j) & ~docu
        who = _pick_persons(persons, 2, _sample_genre(cat, mov, rng), niche, rng)
        slots.append((2, "Writing", job, np.where(has, who, -1)))
    # the director also wrote (one person, several crew jobs)
    slots.append((1, "Writing", "Screenplay", np.where(rng.random(n) < 0.3, directors, -1)))
    slots.append((3, "Production", "Producer", _pick_persons(persons, 3, _sample_genre(cat, mov, rng), niche, rng)))
    for _ in range(2):
        has = rng.random(n) < 0.25 + 0.5 * lvl
        slots.append((3, "Production", "Executive Producer",
                      np.where(has, _pick_persons(persons, 3, _sample_genre(cat, mov, rng), niche, rng), -1)))
    slots.append((1, "Production", "Producer", np.where(rng.random(n) < 0.1, directors, -1)))
    for pool, dep, job, pr in (
        (4, "Sound", "Original Music Composer", 0.9), (5, "Camera", "Director of Photography", 0.85),
        (6, "Editing", "Editor", 0.85), (7, "Production", "Casting", 0.55),
    ):
        has = rng.random(n) < pr
        who = _pick_persons(persons, pool, _sample_genre(cat, mov, rng), niche, rng)
        slots.append((pool, dep, job, np.where(has, who, -1)))
    n_credits = int(cast_p.size + sum(int((s[3] >= 0).sum()) for s in slots))
    credit_ids = _credit_ids(rng, counter, n_credits)
    counter += n_credits
    # ---- per-movie scalars
    blank = rng.random(n) < 0.03 * (1 - lvl)
    runtime = np.clip(np.round(rng.normal(104, 18, n)), 60, 220).astype(int)
    runtime = np.where(cat.genre_idx[mov, 0] == GENRE_INDEX["Animation"], np.clip(runtime - 15, 70, 130), runtime)
    runtime = np.where(rng.random(n) < 0.01, 0, runtime)
    has_money = rng.random(n) < 0.15 + 0.7 * lvl
    budget = np.where(has_money, np.round(np.exp(rng.normal(15.5 + 2.5 * lvl, 0.8)), -3), 0).astype(np.int64)
    revenue = np.where(has_money & (rng.random(n) < 0.85),
                       np.round(budget * np.exp(rng.normal(0.6, 0.9, n)), 0), 0).astype(np.int64)
    popularity = np.round(0.6 + 120 * lvl**3 + rng.gamma(1.5, 1.5 + 6 * lvl), 3)
    vc_base = counts[mov] * rng.uniform(0.4, 2.5, n) + rng.poisson(3, n)
    vote_count = np.round(vc_base).astype(np.int64)
    ml_mean = means[mov]
    va = np.where(np.isnan(ml_mean), 6.0 + 1.2 * cat.quality[mov], 2 * ml_mean - 0.7 + rng.normal(0, 0.25, n))
    vote_average = np.where(vote_count > 0, np.round(np.clip(va, 1.0, 9.6), 3), 0.0)
    has_backdrop = rng.random(n) < 0.6 + 0.4 * lvl
    has_poster = rng.random(n) < 0.9 + 0.1 * lvl
    img = _random_paths(rng, 2 * n, ".jpg")
    homepage_r = rng.random(n)
    video = rng.random(n) < 0.01
    status_r = rng.random(n)
    extra_country = rng.random(n) < 0.2
    extra_c = rng.choice(len(COUNTRIES), size=n, p=np.array([c[3] for c in COUNTRIES]) / sum(c[3] for c in COUNTRIES))
    n_comp = 1 + rng.binomial(3, 0.25 + 0.3 * lvl)
    comp_r = rng.random((n, 4))
    day_r = rng.integers(-40, 0, n)
    later_r = rng.integers(60, 240, n)
    rel_r = rng.random((n, 5))

    lines = []
    ci = 0
    for i in range(n):
        mi = int(mov[i])
        genres = [int(g) for g, w in zip(cat.genre_idx[mi], cat.genre_w[mi], strict=True) if g >= 0 and w > 0]
        # ---- credits
        cast = []
        lead_name = None
        cast_id = 0
        for order, pi in enumerate(persons_list := cast_p[cast_ptr[i]:cast_ptr[i + 1]].tolist()):
            character = _character(genres[0], persons.gender[pi] == 1, char_r[cast_ptr[i] + order])
            if lead_name is None:
                lead_name = character.split(" ")[0] if character not in ("Himself", "Herself") else None
            obj = _person_obj(persons, pi, "Acting")
            cast_id += 1 + int(rng.integers(0, 3))  # increasing, with gaps (as TMDb's)
            obj.update(cast_id=cast_id, character=character, credit_id=credit_ids[ci], order=order)
            ci += 1
            cast.append(obj)
        del persons_list
        crew = []
        seen_jobs: set[tuple[int, str]] = set()
        for _pool, dep, job, arr in slots:
            pi = int(arr[i])
            if pi < 0:
                continue
            # a duplicate (person, job) can only come from the director-also-writes/produces slots
            if (pi, job) in seen_jobs:
                ci += 1
                continue
            seen_jobs.add((pi, job))
            obj = _person_obj(persons, pi, _KNOWN_FOR[_ROLE_POOLS[persons.pool[pi]]])
            obj.update(credit_id=credit_ids[ci], department=dep, job=job)
            ci += 1
            crew.append(obj)
        name = lead_name or FIRST_NAMES_F[int(rng.integers(0, len(FIRST_NAMES_F)))]
        overview, tagline = _overview(rng, genres, name, bool(blank[i]), int(cat.niche[mi]), int(cat.n_niches))
        # ---- keywords
        kws = kw_idx[kw_ptr[mi]:kw_ptr[mi + 1]].tolist()
        keywords = [{"id": int(VOCABULARY.ids[k]), "name": VOCABULARY.names[k]} for k in kws]
        # ---- genres
        tmdb_genres: list[int] = []
        if not cat.no_genres[mi]:
            for g in cat.listed[mi].split("|"):
                for tg in ML_TO_TMDB_GENRES[g]:
                    if tg not in tmdb_genres:
                        tmdb_genres.append(tg)
            if "War" in cat.listed[mi] and rel_r[i, 4] < 0.5 and 36 not in tmdb_genres:
                tmdb_genres.append(36)
        # ---- places and languages
        ci_country = int(cat.country[mi])
        iso, cname, lang, _ = COUNTRIES[ci_country]
        countries = [ci_country]
        if extra_country[i] and int(extra_c[i]) != ci_country:
            countries.append(int(extra_c[i]))
        spoken = [lang] + (["en"] if lang != "en" and rel_r[i, 3] < 0.3 else [])
        comps: list[dict[str, Any]] = []
        for k in range(int(n_comp[i])):
            src = comp_by_country[countries[k % len(countries)]]
            if src.size == 0 or comp_r[i, k] < 0.15:
                src = np.arange(companies.ids.size)
            c = int(src[int(comp_r[i, k] * 1e6) % src.size])
            if all(x["id"] != int(companies.ids[c]) for x in comps):
                comps.append({
                    "id": int(companies.ids[c]), "logo_path": companies.logo[c], "name": companies.names[c],
                    "origin_country": COUNTRIES[int(companies.country[c])][0] if comp_r[i, k] > 0.05 else "",
                })
        # ---- release dates
        has_date = bool(cat.show_year[mi])
        rday = int(cat.release_day[mi])
        release_date = _date(rday) if has_date else ""
        maturity = int(_MATURITY[genres].max()) if genres else 1
        maturity = max(0, min(3, maturity - (1 if rel_r[i, 0] < 0.25 else 0)))
        results = []
        if has_date:
            entries = []
            if rel_r[i, 1] < 0.2:
                entries.append(_release(rday + int(day_r[i]), 1, "", FESTIVALS[int(rel_r[i, 1] * 40) % len(FESTIVALS)]))
            entries.append(_release(rday, 3, CERTIFICATIONS.get(iso, ("",) * 4)[maturity], ""))
            if int(cat.year[mi]) >= 1997 and rel_r[i, 2] < 0.4:
                entries.append(_release(rday + int(later_r[i]), 5, CERTIFICATIONS.get(iso, ("",) * 4)[maturity],
                                        "DVD" if int(cat.year[mi]) < 2008 else "Blu-ray"))
            if int(cat.year[mi]) >= 2008 and rel_r[i, 2] > 0.5:
                entries.append(_release(rday + int(later_r[i]) // 2, 4, "", ""))
            results.append({"iso_3166_1": iso, "release_dates": entries})
            if iso != "US" and rel_r[i, 3] < 0.6:
                results.append({"iso_3166_1": "US", "release_dates": [
                    _release(rday + int(later_r[i]) // 3, 3, CERTIFICATIONS["US"][maturity], "")]})
        # ---- collection
        coll = None
        cid = int(cat.collection[mi])
        if cid >= 0:
            if cid not in collection_paths:
                pp = _random_paths(paths_rng, 2, ".jpg")
                collection_paths[cid] = (pp[0], pp[1] if paths_rng.random() < 0.8 else None)
            p_path, b_path = collection_paths[cid]
            coll = {"id": int(cat.collection_tmdb_id[cid]), "name": cat.collection_name[cid],
                    "poster_path": p_path, "backdrop_path": b_path}
        title = cat.display_title[mi]
        hr = homepage_r[i]
        if hr < 0.7:
            homepage = ""
        elif hr < 0.9:
            homepage = f"https://www.{_slug(title)}.com/"
        else:
            studio = companies.names[int(comp_r[i, 0] * 1e6) % companies.ids.size]
            homepage = f"https://www.{_slug(studio)}.com/movies/{_slug(title)}"
        if status_r[i] < 0.997 or not has_date:
            status = "Released"
        else:
            status = "Canceled" if status_r[i] < 0.9985 else "Rumored"
        payload = {
            "adult": False,
            "backdrop_path": img[2 * i] if has_backdrop[i] else None,
            "belongs_to_collection": coll,
            "budget": int(budget[i]),
            "genres": [{"id": g, "name": TMDB_GENRES[g]} for g in tmdb_genres],
            "homepage": homepage,
            "id": int(cat.tmdb_id[mi]),
            "imdb_id": f"tt{int(cat.imdb_id[mi]):07d}",
            "origin_country": [COUNTRIES[c][0] for c in countries],
            "original_language": lang,
            "original_title": cat.original_title[mi],
            "overview": overview,
            "popularity": float(popularity[i]),
            "poster_path": img[2 * i + 1] if has_poster[i] else None,
            "production_companies": comps,
            "production_countries": [{"iso_3166_1": COUNTRIES[c][0], "name": COUNTRIES[c][1]} for c in countries],
            "release_date": release_date,
            "revenue": int(revenue[i]),
            "runtime": int(runtime[i]),
            "spoken_languages": [
                {"english_name": LANGUAGES[s][0], "iso_639_1": s, "name": LANGUAGES[s][1]} for s in spoken
            ],
            "status": status,
            "tagline": tagline,
            "title": title,
            "video": bool(video[i]),
            "vote_average": float(vote_average[i]),
            "vote_count": int(vote_count[i]),
            "credits": {"cast": cast, "crew": crew},
            "keywords": {"keywords": keywords},
            "release_dates": {"results": results},
        }
        lines.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n")
    return lines, counter


def _release(day: int, kind: int, cert: str, note: str) -> dict[str, Any]:
    return {"certification": cert, "descriptors": [], "iso_639_1": "", "note": note,
            "release_date": f"{_date(day)}T00:00:00.000Z", "type": kind}


def _character(primary: int, female: bool, r: np.ndarray) -> str:
    """Character name from four uniform numbers `r` (drawn in bulk per chunk)."""
    g = LATENT_GENRES[primary]
    if g == "Documentary":
        return "Herself" if female else "Himself"
    names = FIRST_NAMES_F if female else FIRST_NAMES_M
    first = names[int(r[0] * len(names))]
    last = LAST_NAMES[int(r[2] * len(LAST_NAMES))]
    if r[1] < 0.55:
        name = f"{first} {last}"
    elif r[1] < 0.85:
        name = first
    else:
        name = f'{first} "{LAST_NAMES[int(r[3] * len(LAST_NAMES))]}" {last}'
    if g == "Animation":
        name += " (voice)"
    return name


def _slug(s: str) -> str:
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in s)
    return "-".join(p for p in out.split("-") if p) or "movie"


def iter_tmdb_payloads(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Read payloads back, one dict per movie. `path` is the .jsonl.gz file or a dataset directory."""
    p = Path(path)
    if p.is_dir():
        p = p / TMDB_FILE
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
