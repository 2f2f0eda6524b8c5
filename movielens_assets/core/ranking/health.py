"""Is a saved ranker checkpoint usable: finite parameters and item tables, and a training log to show?

A NaN or inf weight (a diverged epoch, a bad feature scale) makes every score NaN, which the re-ranking would
then order arbitrarily; an empty training log means the checkpoint was not produced by `fit_ranker`. Read from
the checkpoint directory (`RankerCheckpoint.save`), no model is built.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def checkpoint_health(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """{"passed", "problems" (one phrase each), "parameters", "non_finite_parameters" {tensor: count},
    "non_finite_item_tables" {table: count}, "epochs", "non_finite_losses"} of the checkpoint in `directory`."""
    import torch

    directory = Path(directory)
    problems: list[str] = []
    out: dict[str, Any] = {"parameters": 0, "non_finite_parameters": {}, "non_finite_item_tables": {}, "epochs": 0,
                           "non_finite_losses": 0}
    try:
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        return {**out, "passed": False, "problems": [f"checkpoint unreadable: {exc}"]}
    for name, tensor in state.items():
        out["parameters"] += int(tensor.numel())
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                out["non_finite_parameters"][name] = bad
    if out["non_finite_parameters"]:
        n = sum(out["non_finite_parameters"].values())
        problems.append(f"{n:,} non-finite weights in {', '.join(sorted(out['non_finite_parameters']))}")
    tables_path = directory / "item_tables.npz"
    if tables_path.is_file():
        with np.load(tables_path) as tables:
            for name in tables.files:
                values = tables[name]
                if np.issubdtype(values.dtype, np.floating) and (bad := int((~np.isfinite(values)).sum())):
                    out["non_finite_item_tables"][name] = bad
    if out["non_finite_item_tables"]:
        problems.append(f"non-finite values in the item tables {', '.join(sorted(out['non_finite_item_tables']))}")
    epochs = (meta.get("training_log") or {}).get("epochs") or []
    out["epochs"] = len(epochs)
    if not epochs:
        problems.append("empty training log (meta.json has no epoch)")
    losses = [e.get("loss") for e in epochs]
    out["non_finite_losses"] = sum(1 for x in losses if not isinstance(x, (int, float)) or not math.isfinite(x))
    if out["non_finite_losses"]:
        problems.append(f"{out['non_finite_losses']} epochs with a non-finite or missing training loss")
    return {**out, "passed": not problems, "problems": problems}
