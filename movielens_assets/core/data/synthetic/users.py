"""Users: activity law, drifting genre tastes, arrival dates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.sampler import (
    BREADTH_EXP,
    DRIFT_MAX,
    DRIFT_MIN,
    FIRST_SHARE_BETA,
    GAP_DAYS,
    GAP_SIGMA,
    MAINSTREAM_BETA,
    PACE_S,
    SESSION_EXP,
    SESSION_RATINGS,
    TAGS_PER_RATING,
    TASTE_CONC,
    TIE_BETA,
    USER_BIAS_SD,
)
from movielens_assets.core.data.synthetic.spec import (
    _SEQ_USERS,
    DAY,
    END_TS,
    MIN_ACTIVITY,
    SyntheticSpec,
    _activity_cap,
    _ss,
    first_ts,
)


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
