"""Masked mean pooling: an item's vector depends neither on the padding length nor on its batch."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.text.embedders import SentenceTransformerEmbedder
from movielens_assets.core.text.pooling import masked_mean, masked_mean_ids

torch = pytest.importorskip("torch")


def pad(seqs: list[torch.Tensor], length: int, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    d = seqs[0].shape[1]
    values = torch.full((len(seqs), length, d), fill, dtype=torch.float32)
    mask = torch.zeros((len(seqs), length), dtype=torch.bool)
    for i, s in enumerate(seqs):
        values[i, : len(s)] = s
        mask[i, : len(s)] = True
    return values, mask


def test_identical_whatever_the_padding_length_and_the_batch():
    g = torch.Generator().manual_seed(0)
    item = torch.randn(3, 16, generator=g)  # an item with 3 real entries
    others = [torch.randn(n, 16, generator=g) for n in (1, 7, 12)]
    alone, mask = pad([item], 3)
    reference = masked_mean(alone, mask)[0]
    assert torch.allclose(reference, item.mean(0), atol=1e-6)
    for length in (3, 4, 12, 50):
        for batch in ([item], [item, *others], [*others, item], [others[2], item, others[0]]):
            values, m = pad(batch, max(length, max(len(s) for s in batch)))
            pos = next(i for i, s in enumerate(batch) if s is item)
            assert torch.equal(masked_mean(values, m)[pos], reference), (length, len(batch))
    # the earlier system's unmasked mean changes with the padding length: the bug this replaces
    short, long_ = pad([item], 3)[0], pad([item], 12)[0]
    assert not torch.allclose(short.mean(1)[0], long_.mean(1)[0])


def test_padding_garbage_never_leaks_and_empty_rows_are_zero():
    item = torch.ones(2, 4)
    values, mask = pad([item, torch.ones(0, 4)], 5, fill=float("nan"))
    out = masked_mean(values, mask)
    assert torch.equal(out[0], torch.ones(4)) and torch.equal(out[1], torch.zeros(4))
    values[0, 3] = float("inf")
    assert torch.equal(masked_mean(values, mask)[0], torch.ones(4))
    with pytest.raises(ValueError, match="mask shape"):
        masked_mean(values, mask[:, :3])


def test_masked_mean_of_padded_id_lists():
    """Genre-id lists padded with 0: same pooled vector for any padding length (what MPS needs)."""
    emb = torch.nn.Embedding(10, 8, padding_idx=0)
    ids_short = torch.tensor([[3, 5, 0]])
    ids_long = torch.tensor([[3, 5, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]])
    a = masked_mean_ids(emb, ids_short, ids_short > 0)
    b = masked_mean_ids(emb, ids_long, ids_long > 0)
    assert torch.equal(a[0], b[0])
    assert torch.allclose(a[0], emb.weight[[3, 5]].mean(0))


def test_sentence_transformer_vectors_do_not_depend_on_the_batch(tiny_model_dir):
    embedder = SentenceTransformerEmbedder(str(tiny_model_dir), device="cpu", batch_size=4)
    text = "heat 1995 action crime thriller"
    alone = embedder.embed([text])[0]
    padded_batch = embedder.embed(["x", text, "a much longer text " * 10, "medium length text here"])
    assert np.allclose(padded_batch[1], alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(padded_batch, axis=1), 1.0, atol=1e-5)
