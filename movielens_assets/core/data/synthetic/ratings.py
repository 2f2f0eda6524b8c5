"""Ratings per chunk of users: sessions and timestamps (`_timeline`), favourite clusters, draws,
duplicates redrawn, scores cut at ML-like quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movielens_assets.core.data.synthetic.catalogue import Catalogue
from movielens_assets.core.data.synthetic.draw import _categorical_rows
from movielens_assets.core.data.synthetic.sampler import (
    FAV_AFF,
    FAV_ALPHA,
    FAV_MIN,
    FAV_PER_RATINGS,
    FAV_SLOTS,
    GAP_SIGMA,
    LATE_DEPTH,
    LATE_S,
    LOYALTY_BETA,
    P_FRESH,
    ROUNDS,
    RUN_MEAN,
    _accept,
    _draw_items,
    _Sampler,
)
from movielens_assets.core.data.synthetic.spec import DAY, END_TS, HALF_STARS_TS
from movielens_assets.core.data.synthetic.users import Users

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
