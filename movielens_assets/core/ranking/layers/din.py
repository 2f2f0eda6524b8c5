"""DIN target attention (Zhou et al. 2018, "Deep Interest Network for Click-Through Rate Prediction", KDD).

For a candidate (query) q (B, D) and the user's history keys k_1..k_L (B, L, D) with a bool mask (B, L):

    a_l    = MLP_att([q, k_l, q - k_l, q * k_l])        one logit per position (the "activation unit")
    pooled = sum_{l real} a_l * k_l                      (B, D)

As in the paper, the weights are NOT softmax-normalised: the pooled vector keeps the intensity of the
user's interest (many relevant items give a larger vector). Padded positions get weight exactly 0 (via the
mask, not a -inf logit), so they neither contribute nor receive gradient, and a row without history pools
to zeros. The module has no positional parameter: the result does not depend on where the padding is or
how long L is (order can only enter through the keys themselves, e.g. a time-gap term the caller adds).

Cheap attention. The first layer of the unit, Linear(4D, H) with weight [W_q | W_k | W_d | W_p], applied to
[q, k, q - k, q * k] equals

    (W_q + W_d) q + (W_k - W_d) k + W_p (q * k) + b  =  a_q + k M_q,
    a_q = (W_q + W_d) q + b          (B, H)     once per SAMPLE, not per position,
    M_q = (W_k - W_d)^T + diag(q) W_p^T   (B, D, H),

so the per-position cost is one batched (L, D) @ (D, H) product instead of building the (B, L, 4D)
concatenation and multiplying it by a (4D, H) matrix: 4x fewer multiply-adds and no (B, L, 4D) temporary.
The parameters are still the plain Linear(4D, H) (`first`), so the module is the paper's DIN; a test checks
the decomposed form against the concatenation.

`MeanPooling` is the "no DIN" ablation with the same call signature: the masked mean of the keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from movielens_assets.core.nn.masking import masked_mean, masked_weighted_sum
from movielens_assets.core.ranking.layers.mlp import MLP, activation_layer


class DINAttention(nn.Module):
    """DIN target attention + masked weighted-sum pooling (see the module docstring for the formula).

    Args:
        dim: D, the width of the query and of the keys.
        hidden: widths of the attention unit's hidden layers (the first one is H of the decomposition).
        activation: activation of the hidden layers (`mlp.ACTIVATIONS`; "prelu" as in the paper's baseline,
            Dice is not used: its batch statistics would run over padded positions).

    forward(query (B, D), keys (B, L, D), mask (B, L) bool) -> pooled (B, D).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (32,), activation: str = "prelu") -> None:
        super().__init__()
        if not hidden:
            raise ValueError("DINAttention needs at least one hidden layer")
        self.dim = dim
        self.first = nn.Linear(4 * dim, hidden[0])  # on [q, k, q - k, q * k]; applied decomposed
        self.first_act = activation_layer(activation, hidden[0])
        self.rest = MLP(hidden[0], hidden[1:], output_dim=1, activation=activation)  # -> one logit

    def attention_logits(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Raw logits a_l for EVERY position (padding included; `forward` masks them): (B, D), (B, L, D) -> (B, L)."""
        D = self.dim
        w = self.first.weight  # (H, 4D) = [W_q | W_k | W_d | W_p]
        w_q, w_k, w_d, w_p = w[:, :D], w[:, D : 2 * D], w[:, 2 * D : 3 * D], w[:, 3 * D :]
        a_q = torch.addmm(self.first.bias, query, (w_q + w_d).t())  # (B, H): once per sample
        m_q = (w_k - w_d).t().unsqueeze(0) + query.unsqueeze(2) * w_p.t().unsqueeze(0)  # (B, D, H)
        h = torch.baddbmm(a_q.unsqueeze(1), keys, m_q)  # (B, L, H) = first layer on [q, k, q-k, q*k]
        return self.rest(self.first_act(h)).squeeze(-1)  # (B, L)

    def weights(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights with padding set to exactly 0: (B, L)."""
        logits = self.attention_logits(query, keys)  # (B, L)
        return torch.where(mask, logits, torch.zeros((), dtype=logits.dtype, device=logits.device))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.attention_logits(query, keys)  # (B, L)
        return masked_weighted_sum(keys, logits, mask)  # (B, D): sum of a_l k_l over real positions

    def pool_grouped(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, group: torch.Tensor
                     ) -> torch.Tensor:
        """`forward` for rows that share histories: query (B, D), keys (G, L, D), mask (G, L), group (B,) int64
        (row b's history is row group[b]) -> (B, D), the values of forward(query, keys[group], mask[group]).

        The rows of each history are padded to n = the largest group, and everything per position becomes a
        batched matrix product over the G histories instead of a (B, L, D) gather:
            h[g, i, l] = a_q[g, i] + k_l A  +  q_i (diag(k_l) W_p^T)     -> one bmm (G, n, D) @ (G, D, L H)
            pooled[g, i] = sum_l a[g, i, l] k_l                           -> one bmm (G, n, L) @ (G, L, D)
        (k A once per history). Much faster than the gather on a CPU when a user's ~200 candidates share one
        history (docs/BENCHMARKS.md, "UnifiedRanker", scoring). When padding would more than double the rows
        (very uneven groups), the gather and `forward` instead."""
        n_groups = keys.shape[0]
        counts = torch.bincount(group, minlength=n_groups)  # (G,)
        width = int(counts.max()) if group.numel() else 0
        if n_groups * width > 2 * group.numel():
            return self.forward(query, keys.index_select(0, group), mask.index_select(0, group))
        D, L = self.dim, keys.shape[1]
        w = self.first.weight  # (H, 4D) = [W_q | W_k | W_d | W_p]
        w_q, w_k, w_d, w_p = w[:, :D], w[:, D : 2 * D], w[:, 2 * D : 3 * D], w[:, 3 * D :]
        H = w.shape[0]
        order = torch.argsort(group, stable=True)  # rows by history (already so when scoring)
        slot = torch.empty_like(group)  # row b's place among its history's rows
        slot[order] = (torch.arange(group.numel(), device=group.device)
                       - (torch.cumsum(counts, 0) - counts)[group[order]])
        a_q = torch.addmm(self.first.bias, query, (w_q + w_d).t())  # (B, H)
        q_pad = query.new_zeros(n_groups, width, D)
        q_pad[group, slot] = query
        a_pad = query.new_zeros(n_groups, width, 1, H)
        a_pad[group, slot, 0] = a_q
        k_w = (keys.transpose(1, 2).unsqueeze(-1) * w_p.t().unsqueeze(1)).reshape(n_groups, D, L * H)  # (G, D, LH)
        h = torch.bmm(q_pad, k_w).view(n_groups, width, L, H)  # the q * k term
        h += torch.matmul(keys, (w_k - w_d).t()).unsqueeze(1)  # + k A  (in place: one pass less each)
        h += a_pad  # (G, n, L, H): the first layer on [q, k, q - k, q * k]
        h = h.relu_() if isinstance(self.first_act, nn.ReLU) else self.first_act(h)
        logits = self.rest(h).squeeze(-1)  # (G, n, L)
        logits = torch.where(mask.unsqueeze(1), logits, torch.zeros((), dtype=logits.dtype, device=logits.device))
        return torch.bmm(logits, keys)[group, slot]  # (B, D)


class MeanPooling(nn.Module):
    """The "no DIN" ablation: the masked mean of the keys (sum / count of real entries; empty rows -> 0).

    forward(query (B, D) — ignored, keys (B, L, D), mask (B, L) bool) -> pooled (B, D). No parameters.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(keys, mask)  # (B, D)

    def pool_grouped(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, group: torch.Tensor
                     ) -> torch.Tensor:
        """Histories shared by rows (keys (G, L, D), group (B,)): one mean per history, gathered -> (B, D)."""
        return masked_mean(keys, mask).index_select(0, group)
