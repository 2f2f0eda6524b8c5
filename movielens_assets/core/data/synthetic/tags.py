"""Tags: who tags, which movies, when, with which words (keywords, genre descriptors, ML-style tags)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.catalogue import Catalogue
from movielens_assets.core.data.synthetic.ratings import _Chunk
from movielens_assets.core.data.synthetic.spec import DAY, END_TS
from movielens_assets.core.data.synthetic.tmdb_vocab import VOCABULARY
from movielens_assets.core.data.synthetic.tmdb_words import GENERAL_TAGS, LATENT_GENRES, LEXICON
from movielens_assets.core.data.synthetic.users import Users


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
