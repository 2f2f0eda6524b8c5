"""Writing a dataset: fast CSV formatting and `generate_movielens` (chunks of users -> ratings.csv,
tags.csv; movies.csv, links.csv, TMDb payloads, `_SYNTHETIC.json`; all atomic).
"""

from __future__ import annotations

import csv
import io
import json
import operator
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.synthetic.catalogue import Catalogue, build_catalogue
from movielens_assets.core.data.synthetic.ratings import _chunk_ratings, _Scale
from movielens_assets.core.data.synthetic.sampler import _build_sampler, population_mix
from movielens_assets.core.data.synthetic.spec import (
    _SEQ_CHUNK,
    _SEQ_TAGS,
    DAY,
    END_TS,
    FILES,
    GENERATOR_VERSION,
    MARKER,
    START_TS,
    SyntheticSpec,
    _check_spec,
    _ss,
    first_ts,
    span_days,
)
from movielens_assets.core.data.synthetic.tags import _chunk_tags, _tag_vocabulary
from movielens_assets.core.data.synthetic.tmdb import TMDB_FILE, write_tmdb_payloads
from movielens_assets.core.data.synthetic.tmdb_vocab import movie_keywords
from movielens_assets.core.data.synthetic.users import build_users

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
            "generator": __package__,  # "movielens_assets.core.data.synthetic", as before the split
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
