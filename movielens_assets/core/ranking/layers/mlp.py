"""MLP block: (Linear -> [BatchNorm] -> activation -> [Dropout]) per hidden layer, optional output Linear.

The fully connected stack every ranking block uses (DIN's attention unit, MMoE's experts and towers). Batch
norm is off by default: the ranker's inputs are already normalised and batch statistics would make a
sample's score depend on its batch. Shapes: x (B, in_dim) or (B, L, in_dim) -> (..., out_dim).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = ("relu", "prelu", "silu", "gelu", "sigmoid", "tanh")


def activation_layer(name: str, width: int) -> nn.Module:
    """A fresh activation module by name (`prelu` learns one slope per unit, as in the DIN paper's baseline)."""
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return PReLU(width)
    if name == "silu":
        return nn.SiLU()
    if name == "gelu":
        return nn.GELU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


class PReLU(nn.Module):
    """PReLU with one learnable slope per unit of the LAST dimension: f(x) = x if x > 0 else a * x.

    (torch's nn.PReLU puts the channels at dim 1, which is L for (B, L, H) inputs.) Shapes: (..., width).
    """

    def __init__(self, width: int, init: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((width,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, x * self.weight)  # (..., width)


class MLP(nn.Module):
    """h_0 = x; h_{k+1} = dropout(act(BN?(W_k h_k + b_k))); output = W_out h_K + b_out when `output_dim`.

    Args:
        in_dim: width of the input (last dimension).
        hidden: widths of the hidden layers (may be empty: then the block is the output Linear, or identity).
        output_dim: width of a final Linear without activation (None: the last hidden layer is the output).
        activation: one of `ACTIVATIONS`.
        dropout: dropout probability after each hidden activation (0 = none).
        batch_norm: BatchNorm1d before each hidden activation (2-D inputs only; off by default).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (),
        output_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation_layer(activation, h))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim))
            width = output_dim
        self.layers = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (..., out_dim)
