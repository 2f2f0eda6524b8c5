"""Masked pooling over padded dimensions: the one padding convention of the project's torch models.

A padded tensor `x` (..., L, D) comes with a bool `mask` (..., L), True = real entry. Pooling never averages
over padding: the masked mean is the sum of the real entries divided by their COUNT (not by L), so a row's
result does not depend on how much padding it got (batch max length in training, global max in serving) —
the bug the lessons (`/work/shared/reference/lessons.md`, "Models") record for the earlier "MPS mean". Rows
with no real entry give zeros, never NaN. Padding is removed with `torch.where` rather than by multiplying
with the mask, so even a NaN / inf in a padded slot cannot leak into the result or its gradient.

Everything here is plain tensor algebra (where / sum / bmm / clamp): the same result on cpu, cuda and mps.
This module imports torch at import time; Dagster-side modules import it inside functions.
"""

from __future__ import annotations

import torch


def masked_count(mask: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """Number of real entries along `dim`, as float (mask (..., L) bool -> (...))."""
    return mask.sum(dim=dim, keepdim=keepdim, dtype=torch.float32)


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Sum of the real entries of `x` along `dim`.

    x (..., L, D), mask (..., L) bool, dim the L dimension of x (default -2) -> (..., D). Padding contributes
    exactly 0 (also when it holds NaN); empty rows give zeros.
    """
    if dim < 0:
        dim += x.dim()
    m = mask.reshape(mask.shape + (1,) * (x.dim() - dim - 1))  # broadcast over the trailing feature dims
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Mean of the real entries of `x` along `dim`: masked_sum / count of real entries (empty rows -> 0).

    x (..., L, D), mask (..., L) bool -> (..., D).
    """
    if dim < 0:
        dim += x.dim()
    count = masked_count(mask, dim=-1).clamp(min=1.0)  # (...): a row with 0 real entries divides by 1
    count = count.reshape(count.shape + (1,) * (x.dim() - dim - 1)).to(x.dtype)
    return masked_sum(x, mask, dim) / count


def masked_weighted_sum(x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_l w_l * x_l over the real entries: x (B, L, D), weights (B, L), mask (B, L) bool -> (B, D).

    The weights are NOT normalised (DIN's pooling, see `core/ranking/layers/din.py`); padded weights are
    replaced by exactly 0 before the product, so padding neither contributes nor receives gradient.
    A broadcast product and a sum rather than a (B, 1, L) @ (B, L, D) `bmm`: on CPU the backward of a bmm
    with a size-1 dimension falls back to a loop over the batch, several times slower.
    """
    w = torch.where(mask, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))  # (B, L)
    return (w.unsqueeze(-1).to(x.dtype) * x).sum(dim=1)  # (B, D)
