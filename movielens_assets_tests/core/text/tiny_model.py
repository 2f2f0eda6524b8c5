"""A tiny sentence-transformers model built locally (random weights, seconds to build) that tests load
through the real loading code (`SentenceTransformerEmbedder` -> `SentenceTransformer(path)`). The
session-scoped `tiny_model_dir` fixture built with it is in the root conftest.py."""

from __future__ import annotations

import string
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_model(path: Path, *, dim: int = 32, seed: int = 0, layers: int = 1) -> Path:
    """Save a SentenceTransformer (1-layer BERT, character-level WordPiece vocabulary, mean pooling,
    normalisation) with `dim`-d outputs into `path`; returns `path`."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    hf_dir = path.parent / f".{path.name}-hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    chars = string.ascii_lowercase + string.digits
    vocab = SPECIAL + list(chars) + [f"##{c}" for c in chars] + list(string.punctuation)
    (hf_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(hf_dir / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=dim, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * dim, max_position_embeddings=256)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=128)
    model = SentenceTransformer(modules=[word, Pooling(dim, "mean"), Normalize()], device="cpu")
    model.save(str(path))
    return path
