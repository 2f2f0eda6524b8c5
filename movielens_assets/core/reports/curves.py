"""Training curves as a small PNG (the two-tower's loss per epoch of every fit), for reports and the UI."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def loss_curves_png(curves: Mapping[str, Sequence[float]], path: str | os.PathLike[str], title: str) -> Path:
    """One line per fit (`{label: loss per epoch}`) on one axis, written atomically to `path` (~15-30 KB at
    6 x 3 in, 80 dpi: small enough to inline in the asset's metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from movielens_assets.core.data.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3))
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), list(losses), marker="o", label=label)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("training loss", fontsize=8)
    ax.tick_params(labelsize=7)
    epochs = max((len(losses) for losses in curves.values()), default=0)
    if 0 < epochs <= 20:
        ax.set_xticks(range(1, epochs + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if curves:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path
