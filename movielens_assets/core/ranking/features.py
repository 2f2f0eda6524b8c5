"""`RankingFeatureEngine`: the point-in-time feature columns of ranking rows (user, movie, cut-off).

Every value is computed from source rows STRICTLY BEFORE the row's cut-off (`AsOfIndex` queries, no Python
loop per row): the user's own rows (a `UserChunk` of a few thousand users at a time, so memory stays flat
at any data size) and every user's rows for the item statistics (`item_events`, memory-mapped). The recall
features (`ch_*`) are the ranks and scores of the candidate lists of the row's recall stage, given by the
caller; rows outside a recall stage get them absent. Absent = NaN, never a made-up zero: a user without
history has no mean rating; without TMDb data or embeddings those columns are not produced at all.

The label (the row's own rating) is never an input: `FEATURE_GROUPS` is the complete list of what can be
produced, and a test checks that nothing else is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from movielens_assets.core.ranking.asof import AsOfIndex
from movielens_assets.core.ranking.profiles import LIKED, TMDB_COLUMNS, ItemFeatures
from movielens_assets.core.ranking.sequences import SequenceStore

DAY = 86_400.0
YEAR = 365.25 * DAY

USER_FEATURES = ("u_log_count", "u_mean_rating", "u_std_rating", "u_like_rate", "u_log_count_30d",
                 "u_days_since_last", "u_days_since_first")
ITEM_FEATURES = ("i_log_count", "i_mean_rating", "i_std_rating", "i_like_rate", "i_log_count_30d",
                 "i_days_since_first", "i_year", "i_age_years")
TMDB_FEATURES = tuple(f"i_{c}" for c in TMDB_COLUMNS)
CROSS_FEATURES = ("x_genre_affinity", "x_genre_like_affinity", "x_rating_dev")
TMDB_CROSS_FEATURES = ("x_director_liked", "x_cast_liked")
SEMANTIC_FEATURES = ("x_semantic_sim",)
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "user": USER_FEATURES, "item": ITEM_FEATURES, "tmdb": TMDB_FEATURES + TMDB_CROSS_FEATURES,
    "cross": CROSS_FEATURES, "semantic": SEMANTIC_FEATURES,
}
"""Every non-recall feature the engine can produce, by group (recall columns: `recall_feature_names`)."""


def recall_feature_names(channels: Sequence[str]) -> tuple[str, ...]:
    """`ch_<channel>_rank`, `ch_<channel>_score` per channel, then the merged list's rank and score."""
    return tuple(f"ch_{c}_{kind}" for c in (*channels, "merged") for kind in ("rank", "score"))


@dataclass(frozen=True)
class FeatureConfig:
    recent_days: float = 30.0  # window of the `*_log_count_30d` features
    semantic_recent: int = 10  # history items averaged by `x_semantic_sim`


class UserChunk:
    """The source rows of some users (store positions `users`, sorted), indexed for point-in-time queries.

    Local user index = position in `users`. Built per chunk of a shard: its indexes hold the chunk's rows only.
    """

    def __init__(self, store: SequenceStore, users: np.ndarray, items: ItemFeatures):
        self.users = np.asarray(users, dtype=np.int64)
        starts, ends = store.indptr[self.users], store.indptr[self.users + 1]
        lengths = ends - starts
        self.indptr = np.zeros(self.users.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.indptr[1:])
        rows = np.repeat(starts, lengths) + (np.arange(int(lengths.sum())) - np.repeat(self.indptr[:-1], lengths))
        self.user_ids = np.asarray(store.user_ids)[self.users]
        self.movie_id = np.asarray(store.movie_id[rows], dtype=np.int64)
        self.rating = np.asarray(store.rating[rows], dtype=np.float64)
        self.ts = np.asarray(store.ts[rows], dtype=np.int64)
        self.in_window = np.asarray(store.in_window[rows])
        self.window_start = np.asarray(store.window_start)[self.users]
        self.test_start = np.asarray(store.test_start)[self.users]
        self.global_rows = rows  # row positions in the store (the positives' `pos_id`)
        local = np.repeat(np.arange(self.users.size, dtype=np.int64), lengths)
        self.row_user = local
        self.item_pos = items.index(self.movie_id)
        known = self.item_pos >= 0
        share = np.where(known[:, None], items.genre_share[np.maximum(self.item_pos, 0)], 0.0)
        liked = self.rating >= LIKED
        self.history = AsOfIndex(local, self.ts, {
            "rating": self.rating, "rating_sq": self.rating**2, "liked": liked.astype(np.float64),
            "genre": share, "genre_liked": share * liked[:, None]})
        self.directors = self._liked_people(local, self.ts, liked, items.directors, known)
        self.cast = self._liked_people(local, self.ts, liked, items.top_cast, known)

    def _liked_people(self, local: np.ndarray, ts: np.ndarray, liked: np.ndarray, people: np.ndarray,
                      known: np.ndarray) -> AsOfIndex:
        """Events (user, person) at the time of each liked row, one per person of the movie."""
        per = np.where((liked & known)[:, None], people[np.maximum(self.item_pos, 0)], -1)
        r, c = np.nonzero(per >= 0)
        return AsOfIndex((local[r] << 32) | per[r, c], ts[r])

    def seq_pos(self, users_local: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
        """How many of the user's source rows are strictly before the cut-off (the sample's `seq_pos`)."""
        return self.history.count_before(users_local, cutoffs)


class RankingFeatureEngine:
    """Feature columns for rows (user of a `UserChunk`, movie, cut-off). See the module docstring."""

    def __init__(self, items: ItemFeatures, item_events: AsOfIndex, channels: Sequence[str] = (),
                 config: FeatureConfig | None = None):
        self.items = items
        self.item_events = item_events
        self.channels = tuple(channels)
        self.config = config or FeatureConfig()

    @property
    def feature_names(self) -> tuple[str, ...]:
        names = [*USER_FEATURES, *ITEM_FEATURES]
        if self.items.has_tmdb_data:
            names += TMDB_FEATURES
        names += CROSS_FEATURES
        if self.items.has_tmdb_data:
            names += TMDB_CROSS_FEATURES
        if self.items.has_semantic_data:
            names += SEMANTIC_FEATURES
        return (*names, *recall_feature_names(self.channels))

    def chunk(self, store: SequenceStore, users: np.ndarray) -> UserChunk:
        return UserChunk(store, users, self.items)

    # ---- the feature groups
    def user_features(self, chunk: UserChunk, users: np.ndarray, cutoffs: np.ndarray) -> dict[str, np.ndarray]:
        """The user's profile as of each cut-off (also the `user_profile` asset's columns)."""
        n, sums = chunk.history.sums_before(users, cutoffs, ["rating", "rating_sq", "liked"])
        recent = chunk.history.count_before(users, cutoffs - int(self.config.recent_days * DAY))
        has = n > 0
        mean = _div(sums["rating"], n)
        var = np.maximum(_div(sums["rating_sq"], n) - mean**2, 0.0)
        last = chunk.ts[np.clip(chunk.indptr[users] + n - 1, 0, max(chunk.ts.size - 1, 0))] if chunk.ts.size \
            else np.zeros(n.size, np.int64)
        first = chunk.ts[np.minimum(chunk.indptr[users], max(chunk.ts.size - 1, 0))] if chunk.ts.size \
            else np.zeros(n.size, np.int64)
        return {
            "u_log_count": np.log1p(n),
            "u_mean_rating": mean,
            "u_std_rating": np.where(has, np.sqrt(var), np.nan),
            "u_like_rate": _div(sums["liked"], n),
            "u_log_count_30d": np.log1p(n - recent),
            "u_days_since_last": np.where(has, (cutoffs - last) / DAY, np.nan),
            "u_days_since_first": np.where(has, (cutoffs - first) / DAY, np.nan),
        }

    def user_genre_shares(self, chunk: UserChunk, users: np.ndarray, cutoffs: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(share of the user's history per genre, the same over liked history) as of each cut-off."""
        n, sums = chunk.history.sums_before(users, cutoffs, ["genre", "genre_liked", "liked"])
        return sums["genre"] / np.maximum(n, 1)[:, None], sums["genre_liked"] / np.maximum(sums["liked"], 1)[:, None]

    def item_features(self, movies: np.ndarray, cutoffs: np.ndarray, pos: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
        """The item's statistics as of each cut-off, and its static attributes (`pos`: `items.index(movies)`)."""
        events = self.item_events
        rank, found = events.lookup(movies)  # the movies are searched once for the three questions
        n, sums = events.sums_at(rank, found, cutoffs, ["rating", "rating_sq", "liked"])
        recent = events.count_at(rank, found, cutoffs - int(self.config.recent_days * DAY))
        first = events.first_time_at(rank, found)
        mean = _div(sums["rating"], n)
        var = np.maximum(_div(sums["rating_sq"], n) - mean**2, 0.0)
        pos = self.items.index(movies) if pos is None else pos
        year = np.where(pos >= 0, self.items.year[np.maximum(pos, 0)], np.nan)
        out = {
            "i_log_count": np.log1p(n),
            "i_mean_rating": mean,
            "i_std_rating": np.where(n > 0, np.sqrt(var), np.nan),
            "i_like_rate": _div(sums["liked"], n),
            "i_log_count_30d": np.log1p(n - recent),
            "i_days_since_first": np.where(n > 0, (cutoffs - first) / DAY, np.nan),
            "i_year": year,
            "i_age_years": 1970.0 + cutoffs / YEAR - year,
        }
        if self.items.has_tmdb_data:
            tmdb = np.where((pos >= 0)[:, None], self.items.tmdb[np.maximum(pos, 0)], np.nan)
            out.update({f"i_{c}": tmdb[:, j] for j, c in enumerate(TMDB_COLUMNS)})
        return out

    def compute(self, chunk: UserChunk, users: np.ndarray, movies: np.ndarray, cutoffs: np.ndarray,
                channel_values: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Every feature column (float32) for rows (local user, raw movie id, cut-off seconds).

        `channel_values`: the `ch_*` columns for these rows (NaN where absent); None: all absent.
        What depends on the user and the cut-off only (a positive and its negatives share it) is computed once
        per distinct (user, cut-off) and spread over its rows."""
        users = np.asarray(users, dtype=np.int64)
        movies = np.asarray(movies, dtype=np.int64)
        cutoffs = np.asarray(cutoffs, dtype=np.int64)
        g_users, g_cutoffs, row_group = _groups(users, cutoffs)
        out = {k: v[row_group] for k, v in self.user_features(chunk, g_users, g_cutoffs).items()}
        pos = self.items.index(movies)
        out.update(self.item_features(movies, cutoffs, pos))
        known = pos >= 0
        share = self.items.genre_share[np.maximum(pos, 0)] * known[:, None]  # [n, G] float32
        has_genres = share.sum(axis=1) > 0
        pref, pref_liked = self.user_genre_shares(chunk, g_users, g_cutoffs)  # [groups, G]
        affinity = np.einsum("ij,ij->i", pref.astype(np.float32)[row_group], share)
        liked_affinity = np.einsum("ij,ij->i", pref_liked.astype(np.float32)[row_group], share)
        n_hist = out["u_log_count"] > 0
        n_liked = out["u_like_rate"] > 0
        out["x_genre_affinity"] = np.where(n_hist & has_genres, affinity, np.nan)
        out["x_genre_like_affinity"] = np.where(n_liked & has_genres, liked_affinity, np.nan)
        out["x_rating_dev"] = out["i_mean_rating"] - out["u_mean_rating"]
        if self.items.has_tmdb_data:
            out["x_director_liked"] = self._people_liked(chunk.directors, users, cutoffs,
                                                         self.items.directors, pos)
            out["x_cast_liked"] = self._people_liked(chunk.cast, users, cutoffs, self.items.top_cast, pos)
        if self.items.has_semantic_data:
            out["x_semantic_sim"] = self._semantic_similarity(chunk, g_users, g_cutoffs, row_group, pos)
        for name in recall_feature_names(self.channels):
            values = None if channel_values is None else channel_values.get(name)
            out[name] = np.full(users.size, np.nan) if values is None else values
        return {name: np.asarray(out[name], dtype=np.float32) for name in self.feature_names}

    @staticmethod
    def _people_liked(index: AsOfIndex, users: np.ndarray, cutoffs: np.ndarray, people: np.ndarray,
                      pos: np.ndarray) -> np.ndarray:
        """Liked history rows sharing a person (director / top cast) with the candidate; NaN when the candidate
        has none of these people on record."""
        cand = np.where((pos >= 0)[:, None], people[np.maximum(pos, 0)], -1)  # [n, P]
        total = np.zeros(users.size)
        for j in range(cand.shape[1]):
            ok = cand[:, j] >= 0
            total[ok] += index.count_before((users[ok] << 32) | cand[ok, j], cutoffs[ok])
        return np.where((cand >= 0).any(axis=1), total, np.nan)

    def _semantic_similarity(self, chunk: UserChunk, g_users: np.ndarray, g_cutoffs: np.ndarray,
                             row_group: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Cosine between the candidate's vector and the mean vector of the user's last `semantic_recent`
        history items before the cut-off (items without a vector left out), per (user, cut-off) group; NaN
        when either is missing."""
        k = self.config.semantic_recent
        end = chunk.indptr[g_users] + chunk.seq_pos(g_users, g_cutoffs)
        idx = end[:, None] - k + np.arange(k)[None, :]
        ok = idx >= chunk.indptr[g_users][:, None]
        item = np.where(ok, chunk.item_pos[np.maximum(idx, 0)] if chunk.item_pos.size else -1, -1)
        has = ((item >= 0) & self.items.has_semantic[np.maximum(item, 0)]).astype(np.float32)
        vec = np.zeros((g_users.size, self.items.semantic_pca.shape[1]), dtype=np.float32)
        for s in range(0, g_users.size, 32_768):  # group blocks: the [groups, k, d] gather stays small
            rows = slice(s, s + 32_768)
            vec[rows] = np.einsum("gkd,gk->gd", self.items.semantic_pca[np.maximum(item[rows], 0)], has[rows])
        norm = np.linalg.norm(vec, axis=1)
        user_vec = vec / np.maximum(norm, 1e-12)[:, None]  # [groups, d]
        cand_ok = (pos >= 0) & self.items.has_semantic[np.maximum(pos, 0)]
        sim = np.empty(pos.size, dtype=np.float32)
        for s in range(0, pos.size, 262_144):  # row blocks: no [n, d] temporaries for the whole chunk
            rows = slice(s, s + 262_144)
            sim[rows] = np.einsum("ij,ij->i", user_vec[row_group[rows]], self.items.semantic_pca[np.maximum(
                pos[rows], 0)])
        return np.where(cand_ok & (norm[row_group] > 0), sim, np.nan)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den == 0 (a statistic of nothing is absent, not zero)."""
    den = np.asarray(den, dtype=np.float64)
    return np.where(den > 0, num / np.maximum(den, 1.0), np.nan)


def _groups(users: np.ndarray, cutoffs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (user, cut-off) pairs in ascending order and each row's pair index. Rows already in that
    order (a shard's samples: a positive's rows together, positives by user and time) are grouped by their
    boundaries, no sort; otherwise one int64 key per row is sorted (not `np.unique(axis=1)`, which sorts a
    structured view several times slower)."""
    if users.size == 0:
        return users, cutoffs, np.zeros(0, np.int64)
    c0 = int(cutoffs.min())
    span = int(cutoffs.max()) - c0 + 1
    if int(users.min()) < 0 or int(users.max()) >= (1 << 62) // span:
        raise ValueError("(user, cut-off) pairs out of range for one int64 key")
    key = users * span + (cutoffs - c0)
    step = np.diff(key)
    if (step >= 0).all():
        first = np.r_[True, step != 0]
        row_group = np.cumsum(first) - 1
        uniq = key[first]
    else:
        uniq, row_group = np.unique(key, return_inverse=True)
    return uniq // span, uniq % span + c0, row_group.astype(np.int64, copy=False)
