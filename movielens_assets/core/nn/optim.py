"""One optimizer over a model whose id tables have sparse gradients: SparseAdam for those, Adam for the rest.

A step of Adam touches every row of every table; with sparse gradients and SparseAdam a step touches only
the rows of the batch (the two-tower and the ranker train much faster on a CPU at ML-32M scale that way:
docs/BENCHMARKS.md, "Recall", two-tower training throughput). Every trainable parameter is in exactly one
of the two optimizers.
This module imports torch at import time; Dagster-side modules import it inside functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the embedding tables with sparse gradients (nn.Embedding / nn.EmbeddingBag, sparse=True)."""
    # torch annotates Embedding.weight as Tensor; it is the module's nn.Parameter
    return [cast(nn.Parameter, m.weight) for m in model.modules()
            if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse]


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(dense, sparse) trainable parameters: every one in exactly one list."""
    sparse_ids = {id(p) for p in sparse_parameters(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if id(p) not in sparse_ids], [p for p in params if id(p) in sparse_ids]


class DenseSparseOptimizer:
    """The dense optimizer (Adam / AdamW) and the sparse one (SparseAdam) stepped as one."""

    def __init__(self, dense: torch.optim.Optimizer | None, sparse: torch.optim.Optimizer | None) -> None:
        self.dense = dense
        self.sparse = sparse

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.dense, self.sparse) if o is not None]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> dict:
        return {"dense": None if self.dense is None else self.dense.state_dict(),
                "sparse": None if self.sparse is None else self.sparse.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        for name, opt in (("dense", self.dense), ("sparse", self.sparse)):
            if opt is not None and state.get(name) is not None:
                opt.load_state_dict(state[name])
