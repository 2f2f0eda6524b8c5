"""DCN-V2 cross network (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons for
Web-scale Learning to Rank Systems", WWW).

    x_{l+1} = x_0 * (W_l x_l + b_l) + x_l,    l = 0 .. n_layers - 1        x_l: (B, d)

`*` is the element-wise product: each layer adds one order of explicit feature crosses while the residual
keeps the lower orders. `CrossNet` learns a full d x d matrix W_l per layer; `LowRankCrossNet` factorises it
as W_l = U_l V_l^T with rank r (the paper's "mixture of low-rank" without the mixture), 2 d r instead of d^2
weights per layer — the cheaper choice when d is large. With n_layers = 0 both are the identity (the
"MLP only" ablation uses `nn.Identity` in the model, which is the same thing). Same layout as torchrec's
`modules/crossnet.py` (CrossNet, LowRankCrossNet).
"""

from __future__ import annotations

import torch
from torch import nn


class CrossNet(nn.Module):
    """Full-rank DCN-V2 cross network.

    Args:
        in_dim: d, the width of x_0 (the output has the same width).
        n_layers: number of cross layers (0 = identity).

    forward(x0 (B, d)) -> (B, d).
    """

    def __init__(self, in_dim: int, n_layers: int = 2) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim
        layers = [nn.Linear(in_dim, in_dim) for _ in range(n_layers)]
        for layer in layers:  # small initial crosses: the network starts close to the identity
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(layers)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, d)
        for layer in self.layers:
            x = x0 * layer(x) + x  # (B, d)
        return x


class LowRankCrossNet(nn.Module):
    """DCN-V2 cross network with W_l = U_l V_l^T (rank r): x_{l+1} = x_0 * (U_l (V_l^T x_l) + b_l) + x_l.

    Args:
        in_dim: d.
        n_layers: number of cross layers (0 = identity).
        rank: r (r < d / 2 for fewer weights than the full-rank network).

    forward(x0 (B, d)) -> (B, d).
    """

    def __init__(self, in_dim: int, n_layers: int = 2, rank: int = 16) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim
        self.rank = rank
        vs = [nn.Linear(in_dim, rank, bias=False) for _ in range(n_layers)]  # V_l^T
        us = [nn.Linear(rank, in_dim) for _ in range(n_layers)]  # U_l, b_l
        for v, u in zip(vs, us, strict=True):
            nn.init.xavier_normal_(v.weight)
            nn.init.xavier_normal_(u.weight)
            nn.init.zeros_(u.bias)
        self.v = nn.ModuleList(vs)
        self.u = nn.ModuleList(us)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, d)
        for v, u in zip(self.v, self.u, strict=True):
            x = x0 * u(v(x)) + x  # v(x): (B, r); u(.): (B, d)
        return x
