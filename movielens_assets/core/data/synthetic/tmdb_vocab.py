"""Keyword vocabulary with stable TMDb-like ids (`VOCABULARY`) and the keywords of every catalogue
movie (`movie_keywords`), shared by the TMDb payloads and the MovieLens tags.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.data.synthetic.tmdb_words import GENERAL_KEYWORDS, LATENT_GENRES, LEXICON

if TYPE_CHECKING:  # pragma: no cover
    from movielens_assets.core.data.synthetic.catalogue import Catalogue


@dataclass(frozen=True)
class Vocabulary:
    """Keyword names with stable TMDb-like ids; per genre the keyword indices (most typical first)."""

    names: tuple[str, ...]
    ids: np.ndarray
    genre_keywords: tuple[np.ndarray, ...]
    general_keywords: np.ndarray


def _stable_ids(names: tuple[str, ...], modulo: int) -> np.ndarray:
    used: set[int] = set()
    out = []
    for n in names:
        k = zlib.crc32(n.encode("utf-8")) % modulo + 1
        while k in used:
            k = k % modulo + 1
        used.add(k)
        out.append(k)
    return np.asarray(out, dtype=np.int64)


def _build_vocabulary() -> Vocabulary:
    names: list[str] = []
    index: dict[str, int] = {}

    def idx(n: str) -> int:
        if n not in index:
            index[n] = len(names)
            names.append(n)
        return index[n]

    per_genre = tuple(np.asarray([idx(k) for k in LEXICON[g].keywords], dtype=np.int64) for g in LATENT_GENRES)
    general = np.asarray([idx(k) for k in GENERAL_KEYWORDS], dtype=np.int64)
    t = tuple(names)
    return Vocabulary(names=t, ids=_stable_ids(t, 300_000), genre_keywords=per_genre, general_keywords=general)


VOCABULARY = _build_vocabulary()


def movie_keywords(cat: Catalogue, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keywords of every catalogue movie as CSR (`ptr`, `kw`): movie i has VOCABULARY indices kw[ptr[i]:ptr[i+1]].

    Each keyword slot draws a genre from the movie's latent profile (80%) and a keyword from that genre's
    vocabulary: half of the time one of the keywords typical of the movie's niche (sub-style) in that genre,
    otherwise Zipf-like over the list (typical ones first); or a general keyword (20%). Deterministic for
    (catalogue, seed).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 51]))
    m = len(cat.movie_id)
    n_kw = np.clip(2 + rng.poisson(2.0 + 4.0 * cat.pop_level), 1, 14).astype(np.int64)
    owner = np.repeat(np.arange(m), n_kw)
    g = _sample_genre(cat, owner, rng)
    gk = VOCABULARY.genre_keywords
    sizes = np.array([len(a) for a in gk])
    offs = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(gk)
    rank = np.floor(sizes[g] * rng.random(owner.size) ** 1.6).astype(np.int64)
    k = max(1, int(cat.n_niches))
    if k > 1:
        niche = cat.niche[owner]
        per = -(-sizes[g] // k)  # keywords per niche (ceil)
        in_niche = niche + k * (rng.random(owner.size) * per).astype(np.int64)
        use = (rng.random(owner.size) < 0.5) & (in_niche < sizes[g])
        rank = np.where(use, in_niche, rank)
    kw = flat[offs[g] + rank]
    general = rng.random(owner.size) < 0.2
    gen = VOCABULARY.general_keywords
    kw = np.where(general, gen[rng.integers(0, gen.size, owner.size)], kw)
    # dedupe (movie, keyword) keeping the first slot
    key = owner * len(VOCABULARY.names) + kw
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(owner.size, dtype=bool)
    keep[first] = True
    owner, kw = owner[keep], kw[keep]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=m))])
    return ptr, kw


def _sample_genre(cat: Catalogue, owner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One latent genre per row, drawn from the profile of movie `owner[row]`."""
    w = cat.genre_w[owner]
    cum = np.cumsum(w, axis=1)
    u = rng.random(owner.size)[:, None] * cum[:, -1:]
    k = np.minimum((cum <= u).sum(axis=1), w.shape[1] - 1)
    return cat.genre_idx[owner, k].astype(np.int64)
