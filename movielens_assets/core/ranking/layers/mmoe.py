"""MMoE: Multi-gate Mixture-of-Experts (Ma et al. 2018, "Modeling Task Relationships in Multi-task Learning
with Multi-gate Mixture-of-Experts", KDD).

    f_e(x)   expert e = 1..E, a shared MLP                       (B, H_e)
    g_t(x) = softmax(G_t x + c_t)   one gate per task t           (B, E), sums to 1 over the experts
    y_t    = tower_t( sum_e g_t(x)_e f_e(x) ) -> one logit         (B,)

Every task sees every expert but weighs them with its own gate, so related tasks share experts while
conflicting ones can specialise (here: `watch` = rated at all vs `like` = rated >= 4). Same composition as
FuxiCTR's `model_zoo/multitask/MMoE` (an MMoE layer + per-task towers); the logits are returned per task
name and turned into probabilities only by the loss (BCE with logits) or the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from movielens_assets.core.ranking.layers.mlp import MLP


class MMoE(nn.Module):
    """Shared experts, one softmax gate and one tower per task.

    Args:
        in_dim: width of the input x.
        tasks: task names (the keys of the output dict, in this order).
        n_experts: E.
        expert_hidden: hidden widths of each expert MLP (the last one is the expert output width H_e).
        tower_hidden: hidden widths of each task tower (followed by a Linear to one logit).
        activation, dropout: of the expert and tower MLPs.

    forward(x (B, in_dim)) -> {task: logits (B,)}.
    """

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str] = ("watch", "like"),
        n_experts: int = 4,
        expert_hidden: Sequence[int] = (128, 64),
        tower_hidden: Sequence[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not tasks or n_experts < 1 or not expert_hidden:
            raise ValueError("MMoE needs at least one task, one expert and one expert layer")
        self.tasks = tuple(tasks)
        self.experts = nn.ModuleList(
            MLP(in_dim, expert_hidden, activation=activation, dropout=dropout) for _ in range(n_experts)
        )
        self.expert_dim = expert_hidden[-1]
        self.gates = nn.ModuleDict({t: nn.Linear(in_dim, n_experts) for t in self.tasks})
        self.towers = nn.ModuleDict(
            {t: MLP(self.expert_dim, tower_hidden, output_dim=1, activation=activation, dropout=dropout)
             for t in self.tasks}
        )

    def expert_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, H_e)

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per task, the softmax over the experts: {task: (B, E)}, each row sums to 1."""
        return {t: _softmax(self.gates[t](x)) for t in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        experts = self.expert_outputs(x)  # (B, E, H_e)
        out = {}
        for t, g in self.gate_weights(x).items():
            mixed = (g.unsqueeze(-1) * experts).sum(dim=1)  # (B, H_e) = sum_e g_e f_e(x) (no bmm: see masking.py)
            out[t] = self.towers[t](mixed).squeeze(-1)  # (B,)
        return out


def _softmax(z: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension as exp(z - max) / sum: the same values as `torch.softmax`, faster on a
    CPU for the gates' few experts per row (its kernel is slow on short rows; docs/BENCHMARKS.md, "UnifiedRanker")."""
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)
