"""Top-K metrics over ALL evaluated users, with bootstrap 95% intervals (vectorised, no per-user loop).

Definitions (per user u with relevant set R_u and ranked list L_u, after removal of training items):
- HR@K      = 1 if any of the first K items of L_u is in R_u, else 0
- Recall@K  = |L_u[:K] ∩ R_u| / |R_u|
- NDCG@K    = sum_{j<K, L_u[j] in R_u} 1/log2(j+2)  /  sum_{j<min(K,|R_u|)} 1/log2(j+2)
Each is averaged over every evaluated user (a user with an empty or short list scores 0 for the
missing positions). Relevance: `any` = every test interaction; `liked` = test ratings >= 4 (only users
with at least one such rating are averaged).
- coverage@K        = distinct items in all top-K lists / catalogue size (items known in training)
- avg_popularity@K  = mean training interaction count of the items in the top-K lists
Intervals: percentile bootstrap over users (`n_boot` resamples, seeded).
"""

from __future__ import annotations

import numpy as np

KS = (10, 20, 50, 100)
LIKED_THRESHOLD = 4.0


def relevance_matrix(
    rec_items: np.ndarray, users: np.ndarray, test_users: np.ndarray, test_items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hit matrix [n_users, K] (rec_items[i, j] in user i's relevant set) and |R_u| per user.

    `rec_items` raw movie ids (-1 padded) for `users` (raw ids, sorted unique); `test_users`,
    `test_items` the relevant (user, movie) pairs (pairs of users not in `users` are ignored)."""
    users = np.asarray(users, dtype=np.int64)
    pos = np.searchsorted(users, test_users)
    ok = (pos < users.size) & (users[np.minimum(pos, users.size - 1)] == test_users) if users.size else pos < 0
    rows, items = pos[ok].astype(np.int64), np.asarray(test_items, dtype=np.int64)[ok]
    n_rel = np.bincount(rows, minlength=users.size)
    span = int(max(items.max(initial=0), rec_items.max(initial=0))) + 2
    rel_keys = np.unique(rows * span + items)
    rec = np.asarray(rec_items, dtype=np.int64)
    rec_keys = np.arange(users.size, dtype=np.int64)[:, None] * span + rec
    hits = np.isin(rec_keys, rel_keys) & (rec >= 0)
    return hits, n_rel


def per_user_metrics(hits: np.ndarray, n_rel: np.ndarray, ks=KS) -> dict[str, np.ndarray]:
    """`hr@K`, `recall@K`, `ndcg@K` per user (float64 arrays), for users with n_rel > 0."""
    keep = n_rel > 0
    hits, n_rel = hits[keep], n_rel[keep]
    width = max(max(ks), hits.shape[1])
    padded = np.zeros((hits.shape[0], width), dtype=bool)
    padded[:, : hits.shape[1]] = hits
    discount = 1.0 / np.log2(np.arange(width) + 2.0)
    cum_hits = np.cumsum(padded, axis=1)
    cum_dcg = np.cumsum(padded * discount, axis=1)
    ideal = np.cumsum(discount)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = cum_hits[:, k - 1] if width else np.zeros(hits.shape[0])
        out[f"hr@{k}"] = (h > 0).astype(np.float64)
        out[f"recall@{k}"] = h / n_rel
        out[f"ndcg@{k}"] = cum_dcg[:, k - 1] / ideal[np.minimum(n_rel, k) - 1]
    return out


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, chunk_elems: int = 20_000_000
) -> np.ndarray:
    """Percentile bootstrap interval of the column means of `values` [n, m] over rows -> [m, 2].

    Each resample's row counts (n draws with replacement) are applied with one matrix product per chunk
    (memory bounded by `chunk_elems` counts)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        return np.full((values.shape[1], 2), np.nan)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_elems // n)
    chunk_means: list[np.ndarray] = []
    for start in range(0, n_boot, per_chunk):
        b = min(per_chunk, n_boot - start)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b, dtype=np.int64) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        chunk_means.append(counts @ values / n)
    means = np.concatenate(chunk_means)
    return np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0).T


def evaluate(
    rec_items: np.ndarray,
    users: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    test_ratings: np.ndarray,
    *,
    item_popularity: tuple[np.ndarray, np.ndarray],
    n_catalogue: int,
    ks=KS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float | list[float] | int]:
    """All metrics of one ranked list per user, flat dict: `hr@20`, `hr@20_ci`, …, `hr@20_liked`, …,
    `coverage@K`, `avg_popularity@K`, `users`, `users_liked`.

    `rec_items` [len(users), >= max(ks)] raw movie ids, -1 padded; `item_popularity` (raw ids sorted,
    counts) of the training data; `n_catalogue` the number of items known in training."""
    rec_items = np.asarray(rec_items, dtype=np.int64)
    if rec_items.shape[1] < max(ks):
        rec_items = np.pad(rec_items, ((0, 0), (0, max(ks) - rec_items.shape[1])), constant_values=-1)
    out: dict[str, float | list[float] | int] = {}
    for suffix, mask in (("", np.ones(len(test_items), bool)), ("_liked", np.asarray(test_ratings) >= LIKED_THRESHOLD)):
        hits, n_rel = relevance_matrix(rec_items, users, np.asarray(test_users)[mask], np.asarray(test_items)[mask])
        per_user = per_user_metrics(hits, n_rel, ks)
        names = list(per_user)
        matrix = np.stack([per_user[k] for k in names], axis=1) if names else np.zeros((0, 0))
        ci = bootstrap_ci(matrix, n_boot=n_boot, seed=seed)
        out[f"users{suffix}"] = int(matrix.shape[0])
        for j, name in enumerate(names):
            out[f"{name}{suffix}"] = float(matrix[:, j].mean()) if matrix.shape[0] else float("nan")
            out[f"{name}{suffix}_ci"] = [float(ci[j, 0]), float(ci[j, 1])]
    pop_ids, pop_counts = item_popularity
    for k in ks:
        top = rec_items[:, :k]
        top = top[top >= 0]
        out[f"coverage@{k}"] = float(np.unique(top).size / n_catalogue) if n_catalogue else 0.0
        pos = np.clip(np.searchsorted(pop_ids, top), 0, max(len(pop_ids) - 1, 0))
        counts = np.where(pop_ids[pos] == top, pop_counts[pos], 0) if len(pop_ids) else np.zeros(top.size)
        out[f"avg_popularity@{k}"] = float(counts.mean()) if top.size else 0.0
    return out


def rec_matrix_from_ranks(
    users: np.ndarray, cand_users: np.ndarray, cand_items: np.ndarray, cand_ranks: np.ndarray, k: int
) -> np.ndarray:
    """Dense [len(users), k] raw movie ids (-1 padded) from long candidate rows (1-based ranks)."""
    users = np.asarray(users, dtype=np.int64)
    out = np.full((users.size, k), -1, dtype=np.int64)
    pos = np.searchsorted(users, cand_users)
    ok = (pos < users.size) & (users[np.minimum(pos, max(users.size - 1, 0))] == cand_users) & (cand_ranks >= 1) & (
        cand_ranks <= k)
    out[pos[ok], np.asarray(cand_ranks)[ok] - 1] = np.asarray(cand_items)[ok]
    return out


# ---------------------------------------------------------------------------------------------- ranking metrics


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of `scores`, ties sharing their average rank (the Mann-Whitney convention)."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    first = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], scores.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(scores.size)
    ranks[order] = avg[group]
    return ranks


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties counted
    half (Mann-Whitney U / (n_pos n_neg)); NaN when a class is missing."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def group_aucs(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group AUC over the groups holding both labels: (group ids, AUC_g, n_g = the group's samples), groups
    in ascending id order. Vectorised: one sort by (group, score) with average ranks of ties inside each group."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    groups = np.asarray(groups)
    if scores.size == 0:
        return groups[:0], np.zeros(0), np.zeros(0)
    ids, g = np.unique(groups, return_inverse=True)
    order = np.lexsort((scores, g))
    gs, ss, ls = g[order], scores[order], labels[order]
    # average ranks within each group: ties = same group and same score
    new_value = np.r_[True, (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])]
    tie_id = np.cumsum(new_value) - 1
    group_start = np.searchsorted(gs, gs, side="left")
    pos_in_group = np.arange(gs.size) - group_start
    tie_first = np.flatnonzero(new_value)
    tie_last = np.r_[tie_first[1:], gs.size] - 1
    avg_rank = ((pos_in_group[tie_first] + pos_in_group[tie_last]) / 2.0 + 1.0)[tie_id]
    n_groups = ids.size
    n = np.bincount(gs, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(gs, weights=ls, minlength=n_groups)
    n_neg = n - n_pos
    rank_sum = np.bincount(gs, weights=avg_rank * ls, minlength=n_groups)
    both = (n_pos > 0) & (n_neg > 0)
    auc_g = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (n_pos[both] * n_neg[both])
    return ids[both], auc_g, n[both]


def gauc(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """Group AUC (Zhou et al., DIN, 2018): sum over groups g of w_g AUC_g / sum of w_g, with w_g the group's
    number of samples (impressions), over the groups holding both labels only (`group_aucs`). Returns (GAUC,
    groups used)."""
    _, auc_g, n = group_aucs(scores, labels, groups)
    if auc_g.size == 0:
        return float("nan"), 0
    return float((auc_g * n).sum() / n.sum()), int(auc_g.size)


def paired_gain(new: np.ndarray, old: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(weighted mean of new - old, its standard error) over paired per-group values with weights w (e.g. two
    models' AUC_g on the same groups, w = impressions: the gain in GAUC). SE of the ratio estimator:
    sqrt(sum w_g^2 (d_g - mean)^2) / sum w_g; (nan, nan) without groups."""
    new, old, w = (np.asarray(a, dtype=np.float64) for a in (new, old, weights))
    if new.shape != old.shape or new.shape != w.shape:
        raise ValueError(f"paired values need equal shapes, got {new.shape}, {old.shape}, {w.shape}")
    if w.size == 0 or w.sum() <= 0:
        return float("nan"), float("nan")
    d = new - old
    mean = float((w * d).sum() / w.sum())
    return mean, float(np.sqrt((w**2 * (d - mean) ** 2).sum()) / w.sum())


def logloss(probabilities: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of predicted probabilities (clipped to [eps, 1 - eps])."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if y.size else float("nan")
