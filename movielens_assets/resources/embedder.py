"""Which text embedder `item_embeddings` uses: a local sentence-transformers model or an
OpenAI-compatible embeddings API (`EMBEDDING_*` settings, docs/EMBEDDINGS.md).

The API key is a plain field so that `definitions.py` can pass it as `dg.EnvVar(...)` (resolved at
launch, shown by name only in the UI and run storage); `describe()` is what the assets report.
"""


from collections.abc import Callable
from typing import Any

import dagster as dg

from movielens_assets.core.text.embedders import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingConfigError,
    OpenAIConfig,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    normalize_backend,
)
from movielens_assets.settings import default

DEFAULT_API_MODEL = "text-embedding-3-small"


class EmbedderResource(dg.ConfigurableResource):
    """Backend (`sentence-transformers` | `openai`), model and batching of the item embedder."""

    backend: str = default("embedding_backend")
    model: str | None = default("embedding_model")
    """sentence-transformers: packaged default, hub id or directory; openai: the API's model name.
    None: `sentence-transformers/all-MiniLM-L6-v2` (packaged) / `text-embedding-3-small`."""
    batch_size: int = default("embedding_batch_size")
    """Texts per forward pass (sentence-transformers)."""
    max_seq_length: int | None = default("embedding_max_seq_length")
    """Token limit per text (sentence-transformers); None: the model's own (MiniLM 256, BGE-M3 8192)."""
    chunk_size: int = default("embedding_chunk_size")
    """Movies per stored chunk (the unit kept when a run is interrupted)."""
    api_base_url: str = default("embedding_api_base_url")
    api_key: str | None = default("embedding_api_key")
    api_dimensions: int | None = default("embedding_api_dimensions")
    api_max_batch: int = default("embedding_api_max_batch")
    api_max_concurrency: int = default("embedding_api_max_concurrency")
    api_max_attempts: int = 6
    api_timeout_s: float = default("embedding_api_timeout_s")

    @property
    def backend_name(self) -> str:
        return normalize_backend(self.backend)

    @property
    def model_name(self) -> str:
        if self.model and self.model.strip():
            return self.model.strip()
        return DEFAULT_API_MODEL if self.backend_name == "openai" else DEFAULT_MODEL

    def build(self, device: str, log: Callable[[str], None] | None = None) -> Embedder:
        """The configured embedder (EmbeddingConfigError for a bad configuration)."""
        if self.backend_name == "openai":
            return OpenAIEmbedder(
                OpenAIConfig(
                    base_url=self.api_base_url.strip().rstrip("/"),
                    api_key=self.api_key,
                    model=self.model_name,
                    dimensions=self.api_dimensions,
                    max_batch=self.api_max_batch,
                    max_concurrency=self.api_max_concurrency,
                    max_attempts=self.api_max_attempts,
                    timeout_s=self.api_timeout_s,
                ),
                log=log,
            )
        return SentenceTransformerEmbedder(
            self.model_name, device=device, batch_size=self.batch_size, max_seq_length=self.max_seq_length, log=log
        )

    def describe(self) -> dict[str, Any]:
        """Non-secret settings, for logs and metadata."""
        d: dict[str, Any] = {"backend": self.backend_name, "model": self.model_name, "chunk_size": self.chunk_size}
        if self.backend_name == "openai":
            d.update(base_url=self.api_base_url, dimensions=self.api_dimensions, max_batch=self.api_max_batch,
                     max_concurrency=self.api_max_concurrency, auth="bearer" if self.api_key else "none")
        else:
            d.update(batch_size=self.batch_size, max_seq_length=self.max_seq_length)
        return d


__all__ = ["EmbedderResource", "EmbeddingConfigError"]
