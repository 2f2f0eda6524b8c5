"""Ranking EDA: what each feature says about the labels before any model is trained.

Per feature column of the samples: its coverage (share of rows where it is present — TMDb, semantic and
recall features are absent by design on some rows), its single-feature AUC against `watch` and `like`
(over the rows where it is present: 0.5 = no signal, below 0.5 = signal in the other direction) and
against `like` among watched rows only (the harder question: which watched movies were liked), and the
`watch` rate by decile of the feature (one PNG per feature group). Input: a sample of the shards' rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.evaluation.metrics import auc
from movielens_assets.core.ranking.features import FEATURE_GROUPS

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa


def feature_group(name: str) -> str:
    for group, names in FEATURE_GROUPS.items():
        if name in names:
            return group
    return "recall" if name.startswith("ch_") else "other"


@dataclass(frozen=True)
class FeatureSummary:
    name: str
    group: str
    coverage: float
    auc_watch: float
    auc_like: float
    auc_like_watched: float
    decile_edges: list[float]
    decile_watch_rate: list[float]


def summarise(table: pa.Table, features: list[str]) -> list[FeatureSummary]:
    watch = table.column("watch").to_numpy().astype(bool)
    like = table.column("like").to_numpy().astype(bool)
    out = []
    for name in features:
        x = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(x)
        edges, rates = _deciles(x[ok], watch[ok])
        out.append(FeatureSummary(
            name, feature_group(name), float(ok.mean()) if x.size else 0.0,
            auc(x[ok], watch[ok]), auc(x[ok], like[ok]), auc(x[ok & watch], like[ok & watch]), edges, rates))
    return out


def _deciles(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Label rate per decile bin of x (bins merged where quantiles coincide)."""
    if x.size == 0:
        return [], []
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
    if edges.size == 1:
        return [float(edges[0])], [float(y.mean())]
    b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(b, minlength=edges.size - 1)
    rates = np.bincount(b, weights=y, minlength=edges.size - 1) / np.maximum(counts, 1)
    return edges.tolist(), rates.tolist()


def _fmt(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3f}"


def markdown(summaries: list[FeatureSummary], *, rows: int, shards: list[str], dataset: str, base_rate: float,
             plots: dict[str, Path]) -> str:
    """The report: features ranked by the strength of their watch signal (|AUC - 0.5|)."""
    ranked = sorted(summaries, key=lambda s: -abs((s.auc_watch if np.isfinite(s.auc_watch) else 0.5) - 0.5))
    lines = [f"# Ranking EDA — `{dataset}`", "",
             f"{rows:,} sample rows from shards {', '.join(shards)} (watch rate {base_rate:.3f}: 1 positive, 9 "
             "negatives). Single-feature AUC over the rows where the feature is present; 0.5 = no signal, < 0.5 = "
             "signal in the other direction. `like | watched`: like (rating >= 4) against the other watched rows.",
             "", "| feature | group | coverage | AUC watch | AUC like | AUC like \\| watched | watch rate, lowest → "
             "highest decile |", "|---|---|---|---|---|---|---|"]
    for s in ranked:
        rates = f"{s.decile_watch_rate[0]:.3f} → {s.decile_watch_rate[-1]:.3f}" if s.decile_watch_rate else "—"
        lines.append(f"| `{s.name}` | {s.group} | {s.coverage:.3f} | {_fmt(s.auc_watch)} | {_fmt(s.auc_like)} | "
                     f"{_fmt(s.auc_like_watched)} | {rates} |")
    groups: dict[str, list[FeatureSummary]] = {}
    for s in summaries:
        groups.setdefault(s.group, []).append(s)
    lines += ["", "## By group", ""]
    for group, items in groups.items():
        best = max(items, key=lambda s: abs((s.auc_watch if np.isfinite(s.auc_watch) else 0.5) - 0.5))
        lines.append(f"- **{group}** ({len(items)} features): strongest `{best.name}` (AUC watch "
                     f"{_fmt(best.auc_watch)}, coverage {best.coverage:.3f})")
    if plots:
        lines += ["", "## Watch rate by decile", ""]
        lines += [f"![{group}]({path.name})" for group, path in plots.items()]
    return "\n".join(lines) + "\n"


def decile_plots(summaries: list[FeatureSummary], out_dir: Path, base_rate: float) -> dict[str, Path]:
    """One PNG per feature group: watch rate per decile of each feature (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from movielens_assets.core.data.atomic import atomic_path

    groups: dict[str, list[FeatureSummary]] = {}
    for s in summaries:
        if s.decile_watch_rate:
            groups.setdefault(s.group, []).append(s)
    paths = {}
    for group, items in groups.items():
        cols = min(4, len(items))
        rows = (len(items) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, s in zip(axes.ravel(), items, strict=False):
            ax.bar(range(len(s.decile_watch_rate)), s.decile_watch_rate, color="#4C72B0")
            ax.axhline(base_rate, color="#C44E52", lw=0.8, ls="--")
            ax.set_title(f"{s.name}\nAUC {_fmt(s.auc_watch)}, cov {s.coverage:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(items):]:
            ax.axis("off")
        fig.suptitle(f"{group}: watch rate by decile (dashed: overall)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"ranking_eda_{group}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
        paths[group] = path
    return paths
