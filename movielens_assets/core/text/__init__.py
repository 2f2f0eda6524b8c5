"""Item text and text embeddings (no Dagster inside).

- `item_text`: one versioned, documented text per movie (+ a content hash), built with DuckDB from
  the MovieLens tables and, when present, the TMDb star tables.
- `embedders`: the `Embedder` protocol and its backends (sentence-transformers, OpenAI-compatible API).
- `pooling`: masked mean pooling over padded sequences (padding-invariant; MPS-safe).
- `store`: the append-only embedding store keyed by (movie_id, text_hash, model), the incremental
  embedding run and the checks / quality signal over the stored vectors.

Heavy libraries (torch, sentence_transformers) are imported inside functions only.
"""
