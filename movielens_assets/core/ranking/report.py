"""The ranking evaluation: the ranker where it is used, beside the recall-only order and every channel.

- Classification on the held-out candidates (the merged top-200 of every last_n test user; labels from the
  test rows, never seen in training): AUC, GAUC (per user, impression-weighted over users with both labels)
  and logloss per task; `like` also among watched rows only (which watched movies were liked).
- End to end: each user's candidates re-ranked by the ranker's `watch` probability, scored with HR / Recall /
  NDCG @ 10, 20, 50 over ALL test users (test items outside the candidates count as misses), with bootstrap
  95% intervals — beside the merged (recall-only) order and each channel's own list.
- `ranking_report` assembles both, the channels' lists and the ablations (re-ranked here) into the report of
  `metrics/ranking.json` (the `ranking_metrics` asset writes it).
Shape of `metrics/ranking.json`: docs/EVALUATION.md ("Ranking").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

import numpy as np

from movielens_assets.core.evaluation.metrics import (
    auc,
    bootstrap_ci,
    gauc,
    logloss,
    per_user_metrics,
    rec_matrix_from_ranks,
    relevance_matrix,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from movielens_assets.core.ranking.features import RankingFeatureEngine
    from movielens_assets.core.ranking.sequences import SequenceStore
    from movielens_assets.core.ranking.trainer import RankerCheckpoint

RANK_KS = (10, 20, 50)
LIKED = 4.0
LIST_METRICS = tuple(f"{m}@{k}" for k in RANK_KS for m in ("hr", "recall", "ndcg"))


def list_metrics(users: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, cand_users: np.ndarray,
                 cand_items: np.ndarray, cand_ranks: np.ndarray, *, n_boot: int = 1000, seed: int = 0
                 ) -> dict[str, float | list[float]]:
    """HR / Recall / NDCG @ RANK_KS (means over `users`, + `_ci` bootstrap intervals) of ranked lists."""
    rec = rec_matrix_from_ranks(users, np.asarray(cand_users, dtype=np.int64), np.asarray(cand_items, dtype=np.int64),
                                np.asarray(cand_ranks), max(RANK_KS))
    hits, n_rel = relevance_matrix(rec, users, test_users, test_items)
    per_user = per_user_metrics(hits, n_rel, RANK_KS)
    names = [n for n in LIST_METRICS if n in per_user]
    matrix = np.stack([per_user[n] for n in names], axis=1)
    ci = bootstrap_ci(matrix, n_boot=n_boot, seed=seed)
    out: dict[str, float | list[float]] = {"users": int(matrix.shape[0])}
    for j, name in enumerate(names):
        out[name] = float(matrix[:, j].mean())
        out[f"{name}_ci"] = [float(ci[j, 0]), float(ci[j, 1])]
    return out


def candidate_labels(scored: pa.Table, test_users: np.ndarray, test_items: np.ndarray, test_ratings: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(watch, like) of each scored candidate: in the user's test rows; and rated >= 4 there."""
    span = np.int64(1) << 32
    keys = np.asarray(test_users, dtype=np.int64) * span + np.asarray(test_items, dtype=np.int64)
    order = np.argsort(keys)
    keys, ratings = keys[order], np.asarray(test_ratings)[order]
    q = scored.column("user_id").to_numpy().astype(np.int64) * span + scored.column("movie_id").to_numpy()
    pos = np.minimum(np.searchsorted(keys, q), max(keys.size - 1, 0))
    watch = (keys[pos] == q) if keys.size else np.zeros(q.size, bool)
    like = watch & (ratings[pos] >= LIKED) if keys.size else watch
    return watch, like


def classification(scored: pa.Table, watch: np.ndarray, like: np.ndarray) -> dict[str, dict[str, float]]:
    """AUC / GAUC / logloss of `p_watch` for watch and of `p_like` (or p_watch, single task) for like, all
    candidates; `like_watched`: like among the watched candidates, scored with P(like | watch) = p_like /
    p_watch (the `like` head estimates P(watch and like): labels of unwatched rows are 0)."""
    users = scored.column("user_id").to_numpy()
    p_watch = scored.column("p_watch").to_numpy().astype(np.float64)
    p_like = (scored.column("p_like") if "p_like" in scored.column_names else scored.column("p_watch")
              ).to_numpy().astype(np.float64)
    p_like_given_watch = np.clip(p_like / np.maximum(p_watch, 1e-12), 0.0, 1.0)
    out: dict[str, dict[str, float]] = {"auc": {}, "gauc": {}, "logloss": {}}
    for task, p, y, m in (("watch", p_watch, watch, slice(None)), ("like", p_like, like, slice(None)),
                          ("like_watched", p_like_given_watch, like, watch)):
        out["auc"][task] = auc(p[m], y[m])
        out["gauc"][task] = gauc(p[m], y[m], users[m])[0]
        out["logloss"][task] = logloss(p[m], y[m])
    return out


def headline(metrics: Mapping[str, float | list[float]]) -> dict[str, float]:
    """The list metrics without intervals (the `final` / `recall_only` / channel blocks of ranking.json)."""
    # the LIST_METRICS entries are floats; the lists are their `_ci` intervals
    return {k: float(cast(float, metrics[k])) for k in LIST_METRICS if k in metrics}


def markdown(report: Mapping) -> str:
    """`metrics/ranking.md`: one table — final (ranker) vs recall-only (merged) vs every channel — then the
    classification metrics and the ablations."""
    cols = ["list", "users"] + [f"{m}@{k}" for k in RANK_KS for m in ("HR", "Recall", "NDCG")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = [("**final (ranker)**", report["final_ci"]), ("recall-only (merged)", report["recall_only_ci"])]
    rows += [(name, m) for name, m in report["channels_ci"].items()]
    for name, m in rows:
        cells = [name, str(m.get("users", ""))]
        for k in RANK_KS:
            for metric in ("hr", "recall", "ndcg"):
                lo, hi = m[f"{metric}@{k}_ci"]
                cells.append(f"{m[f'{metric}@{k}']:.4f} [{lo:.4f}, {hi:.4f}]" if metric == "ndcg" and k == 20
                             else f"{m[f'{metric}@{k}']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    text = [f"# Ranking — `{report['dataset']}`, protocol `{report['protocol']}`, {report['users']:,} test users", "",
            "Each test user's merged top-200 candidates re-ranked by the ranker (p(watch)); HR / Recall / NDCG over "
            "all test items (outside the candidates = misses); NDCG@20 with its bootstrap 95% interval.", "",
            *lines, "", "## Classification on the held-out candidates", "",
            "| task | AUC | GAUC | logloss |", "|---|---|---|---|"]
    for task in report["auc"]:
        text.append(f"| {task} | {report['auc'][task]:.4f} | {report['gauc'][task]:.4f} | "
                    f"{report['logloss'][task]:.4f} |")
    if report.get("ablations"):
        text += ["", "## Ablations (same data; `full_same_budget`: the full model trained with the ablations' "
                 "smaller budget — compare the ablations with it)", "",
                 "| model | GAUC watch | GAUC like | NDCG@20 | Recall@20 |", "|---|---|---|---|---|",
                 f"| full | {report['gauc']['watch']:.4f} | {report['gauc']['like']:.4f} | "
                 f"{report['final']['ndcg@20']:.4f} | {report['final']['recall@20']:.4f} |"]
        for name, body in report["ablations"].items():
            text.append(f"| {name} | {body['gauc']['watch']:.4f} | {body['gauc']['like']:.4f} | "
                        f"{body['final']['ndcg@20']:.4f} | {body['final']['recall@20']:.4f} |")
    return "\n".join(text) + "\n"


REQUIRED_KEYS = ("dataset", "protocol", "users", "auc", "gauc", "logloss", "final", "recall_only", "channels",
                 "ablations")


def missing_keys(report: Mapping) -> list[str]:
    """What `metrics/ranking.json` lacks of its documented shape (empty = complete)."""
    missing = [k for k in REQUIRED_KEYS if k not in report]
    for block in ("auc", "gauc", "logloss"):
        missing += [f"{block}.{t}" for t in ("watch", "like") if t not in report.get(block, {})]
    lists = [("final", report.get("final", {})), ("recall_only", report.get("recall_only", {}))]
    lists += [(f"channels.{c}", m) for c, m in report.get("channels", {}).items()]
    for name, body in lists:
        missing += [f"{name}.{k}" for k in LIST_METRICS if not isinstance(body.get(k), float)]
    if not report.get("channels"):
        missing.append("channels.<at least one>")
    for name, body in report.get("ablations", {}).items():
        missing += [f"ablations.{name}.{k}" for k in ("gauc", "final") if k not in body]
    return missing


def training_curve_png(epochs: list[dict], path) -> None:
    """Training loss and validation GAUC per epoch (one PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from movielens_assets.core.data.atomic import atomic_path

    x = [e["epoch"] for e in epochs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    a.plot(x, [e["loss"] for e in epochs], marker="o")
    a.set_title("training loss", fontsize=9)
    for task in epochs[0]["valid"]["gauc"] if epochs else ():
        b.plot(x, [e["valid"]["gauc"][task] for e in epochs], marker="o", label=task)
    b.set_title("validation GAUC", fontsize=9)
    b.legend(fontsize=7)
    for ax in (a, b):
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def ranking_report(scored: pa.Table, targets: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                   merged_path: str | os.PathLike[str], channel_paths: Mapping[str, str | os.PathLike[str]], *,
                   dataset: str, protocol: str, n_boot: int = 1000, seed: int = 0,
                   ablations: Mapping[str, RankerCheckpoint] | None = None, store: SequenceStore | None = None,
                   engine: RankingFeatureEngine | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """The report of `metrics/ranking.json`: `classification` of the `scored` candidates (the ranker's
    re-ranked merged lists) and their `list_metrics` (`final`), beside the merged order (`recall_only`, from
    `merged_path`) and each channel's own list (`channel_paths`); each of `ablations` (checkpoints) re-ranks the
    merged lists (`rerank`, needs `store` and `engine`) and is scored the same way. `targets`: (evaluated
    users, test users, test items, test ratings) of the protocol's test stage."""
    import pyarrow.parquet as pq

    from movielens_assets.core.ranking.rerank import rerank

    users, t_users, t_items, t_ratings = targets

    def lists(table) -> dict:
        return list_metrics(users, t_users, t_items, table.column("user_id").to_numpy(),
                            table.column("movie_id").to_numpy(), table.column("rank").to_numpy(),
                            n_boot=n_boot, seed=seed)

    def evaluate_scored(table) -> tuple[dict, dict]:
        watch, like = candidate_labels(table, t_users, t_items, t_ratings)
        return classification(table, watch, like), lists(table)

    cls, final = evaluate_scored(scored)
    merged = pq.read_table(merged_path, columns=["user_id", "movie_id", "rank"])
    recall_only = lists(merged)
    channels = {c: lists(pq.read_table(p, columns=["user_id", "movie_id", "rank"])) for c, p in channel_paths.items()}
    scored_ablations: dict[str, dict] = {}
    if ablations:
        if store is None or engine is None:
            raise ValueError("scoring the ablations needs the sequence store and the feature engine")
        full_merged = pq.read_table(merged_path)
        for name, table in rerank(ablations, store, engine, full_merged, users, workers=None,
                                  progress=progress).items():
            a_cls, a_final = evaluate_scored(table)
            scored_ablations[name] = {"auc": a_cls["auc"], "gauc": a_cls["gauc"], "logloss": a_cls["logloss"],
                                      "final": headline(a_final)}
    return {"dataset": dataset, "protocol": protocol, "users": int(users.size),
            "candidates": "merged top-200 of the test stage", "relevance": "any test rating; like: rating >= 4",
            **cls, "final": headline(final), "recall_only": headline(recall_only),
            "channels": {c: headline(m) for c, m in channels.items()}, "ablations": scored_ablations,
            "final_ci": final, "recall_only_ci": recall_only, "channels_ci": channels}
