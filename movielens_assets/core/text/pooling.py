"""Masked mean pooling over padded sequences.

The earlier system averaged padded genre ids with a plain mean: padding counted in the denominator,
and since training padded to the batch maximum and serving to the global maximum, the same item got
different vectors depending on what it was batched with (lessons.md). Here the mean is
`sum(x * mask) / count(mask)`: padding contributes exactly zero to the sum and nothing to the count,
so an item's vector does not depend on the padding length or on the other items of its batch. It is
plain tensor arithmetic (no `EmbeddingBag`), so it runs unchanged on cuda, mps and cpu.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of `values` over `dim`, counting only positions where `mask` is true / non-zero.

    `values`: (batch, length, features) (or any shape whose first dims match `mask`);
    `mask`: (batch, length), bool or 0/1. Rows with no real entry give a zero vector (not NaN).
    """
    import torch

    if mask.shape != values.shape[: mask.dim()]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match values {tuple(values.shape)}")
    weights = mask.to(values.dtype)
    while weights.dim() < values.dim():
        weights = weights.unsqueeze(-1)
    # where() rather than multiplication: a NaN/inf in a padded position must not leak into the sum.
    summed = torch.where(weights > 0, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum(dim)
    counts = weights.sum(dim).clamp(min=1.0)
    return summed / counts


def masked_mean_ids(embedding: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of `embedding(ids)` over the last dimension of `ids` (e.g. padded genre id lists)."""
    return masked_mean(embedding(ids), mask, dim=ids.dim() - 1)
