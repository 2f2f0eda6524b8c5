"""Environment variables -> one typed settings object. The ONLY place the project reads os.environ.

Every variable read here is listed in `.env.example`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from movielens_assets.core.device import parse_device

DEFAULT_DATASET = "synthetic-small"
DEFAULT_GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
DEFAULT_TMDB_BASE_URL = "https://api.themoviedb.org/3"
DEFAULT_TMDB_REFRESH_CRON = "0 9 * * *"  # daily, 09:00 UTC (after TMDb's daily id export)
DEFAULT_EMBEDDING_API_BASE_URL = "https://api.openai.com/v1"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Root of the local data lake (`MOVIELENS_DATA_DIR`, default `data`)."""
    dataset: str
    """`ml-32m`, `ml-25m`, `ml-latest-small`, `ml-latest`, `synthetic-<size>` or a directory path."""
    seed: int
    """Seed of the synthetic generator (`MOVIELENS_SEED`)."""
    grouplens_url: str
    """Base URL of the GroupLens downloads (`MOVIELENS_GROUPLENS_URL`); tests point it at 127.0.0.1."""
    duckdb_memory_limit: str | None
    """DuckDB `memory_limit` for heavy queries (`MOVIELENS_DUCKDB_MEMORY_LIMIT`, e.g. `8GB`)."""
    duckdb_threads: int | None
    """DuckDB thread count (`MOVIELENS_DUCKDB_THREADS`); default: all cores."""
    # -- TMDb enrichment (docs/TMDB.md) --
    tmdb_read_access_token: str | None = field(default=None, repr=False)
    """TMDb API read access token (`TMDB_API_READ_ACCESS_TOKEN`, sent as Bearer; preferred). Secret."""
    tmdb_api_key: str | None = field(default=None, repr=False)
    """TMDb v3 API key (`TMDB_API_KEY`, sent as the api_key query parameter). Secret."""
    tmdb_base_url: str = DEFAULT_TMDB_BASE_URL
    """TMDb API root (`TMDB_BASE_URL`); tests and staging point it at a local server."""
    tmdb_language: str = "en-US"
    """`language` of the movie requests (`TMDB_LANGUAGE`)."""
    tmdb_max_connections: int = 20
    """Concurrent connections of the crawler (`TMDB_MAX_CONNECTIONS`)."""
    tmdb_rate_limit_per_s: float = 35.0
    """Requests per second the crawler never exceeds (`TMDB_RATE_LIMIT_PER_S`)."""
    tmdb_timeout_s: float = 30.0
    """Per-request timeout in seconds (`TMDB_TIMEOUT_S`)."""
    tmdb_required: bool = False
    """`TMDB_REQUIRED=1`: missing credentials / links fail the run instead of an empty enrichment."""
    tmdb_max_age_days: float | None = None
    """`TMDB_MAX_AGE_DAYS`: a crawl also re-fetches payloads older than this (default: never; the
    changes-feed refresh keeps them current)."""
    tmdb_refresh_cron: str = DEFAULT_TMDB_REFRESH_CRON
    """Cron (UTC) of `tmdb_refresh_schedule` (`TMDB_REFRESH_CRON`)."""
    # -- text embeddings (docs/EMBEDDINGS.md) --
    device: str = "auto"
    """Torch device of every torch step (`MOVIELENS_DEVICE`: auto | cpu | cuda | cuda:N | mps)."""
    embedding_backend: str = "sentence-transformers"
    """`EMBEDDING_BACKEND`: `sentence-transformers` (local model) or `openai` (OpenAI-compatible API)."""
    embedding_model: str | None = None
    """`EMBEDDING_MODEL`: hub id (`BAAI/bge-m3`), local directory, or the API's model name; empty = the
    packaged all-MiniLM-L6-v2 (offline) / `text-embedding-3-small` for the API."""
    embedding_batch_size: int = 32
    """Texts per forward pass of the local model (`EMBEDDING_BATCH_SIZE`)."""
    embedding_max_seq_length: int | None = None
    """Token limit per text of the local model (`EMBEDDING_MAX_SEQ_LENGTH`; empty = the model's own)."""
    embedding_chunk_size: int = 2048
    """Movies per stored embedding chunk (`EMBEDDING_CHUNK_SIZE`): what an interrupted run keeps."""
    embedding_api_base_url: str = DEFAULT_EMBEDDING_API_BASE_URL
    """OpenAI-compatible API root (`EMBEDDING_API_BASE_URL`); `/embeddings` is appended."""
    embedding_api_key: str | None = field(default=None, repr=False)
    """`EMBEDDING_API_KEY` (else `OPENAI_API_KEY`). Secret."""
    embedding_api_key_env: str | None = None
    """Which variable held the key (handed to Dagster as `dg.EnvVar(<name>)`)."""
    embedding_api_dimensions: int | None = None
    """`EMBEDDING_API_DIMENSIONS`: requested vector size (text-embedding-3-*); empty = the model's own."""
    embedding_api_max_batch: int = 128
    """Inputs per API request (`EMBEDDING_API_MAX_BATCH`; the provider's cap)."""
    embedding_api_max_concurrency: int = 4
    """API requests in flight (`EMBEDDING_API_MAX_CONCURRENCY`)."""
    embedding_api_timeout_s: float = 60.0
    """Per-request timeout of the API (`EMBEDDING_API_TIMEOUT_S`)."""
    # -- ranking (docs/RANKING.md) --
    ranking_shards: int = 16
    """User shards of `ranking_samples` (`MOVIELENS_RANKING_SHARDS`, 1..1000): its partitions `00`, `01`, …"""
    secrets_from_env: bool = False
    """True when the settings were read from the process environment: the TMDb secrets then reach
    Dagster as `dg.EnvVar`s (resolved at launch, shown by name only in the UI and run storage)."""

    @property
    def tmdb_has_credentials(self) -> bool:
        return bool(self.tmdb_read_access_token or self.tmdb_api_key)


def _optional_number(name: str, value: str | None, kind: type, what: str):
    if value is None or value.strip() == "":
        return None
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be {what}, got {value!r}") from exc


def _optional_int(name: str, value: str | None) -> int | None:
    return _optional_number(name, value, int, "an integer")


def _optional_float(name: str, value: str | None) -> float | None:
    return _optional_number(name, value, float, "a number")


def _int_or(name: str, value: str | None, default: int) -> int:
    parsed = _optional_int(name, value)
    return default if parsed is None else parsed


def _float_or(name: str, value: str | None, default: float) -> float:
    parsed = _optional_float(name, value)
    return default if parsed is None else parsed


def _bool(name: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"environment variable {name} must be 1/0 (true/false, yes/no, on/off), got {value!r}")


def _device(name: str, value: str | None) -> str:
    try:
        return parse_device(value, name)
    except ValueError as exc:
        raise ValueError(f"environment variable {exc}") from None


def _choice(name: str, value: str | None, default: str, choices: tuple[str, ...]) -> str:
    text = (value or "").strip().lower() or default
    aliases = {"openai-compatible": "openai", "st": "sentence-transformers", "sentence_transformers":
               "sentence-transformers"}
    text = aliases.get(text, text) if "openai" in choices else text
    if text in choices:
        return text
    raise ValueError(f"environment variable {name} must be one of {', '.join(choices)}; got {value!r}")


def _ranking_shards(value: str | None) -> int:
    from movielens_assets.core.ranking.shards import MAX_SHARDS

    n = _int_or("MOVIELENS_RANKING_SHARDS", value, 16)
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"environment variable MOVIELENS_RANKING_SHARDS must be in 1..{MAX_SHARDS}, got {value!r}")
    return n


def _secret(value: str | None) -> str | None:
    return (value or "").strip() or None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("MOVIELENS_DATA_DIR") or "data").expanduser()
    return Settings(
        data_dir=data_dir.resolve(),
        dataset=(env.get("MOVIELENS_DATASET") or DEFAULT_DATASET).strip(),
        seed=_int_or("MOVIELENS_SEED", env.get("MOVIELENS_SEED"), 42),
        grouplens_url=(env.get("MOVIELENS_GROUPLENS_URL") or DEFAULT_GROUPLENS_URL).rstrip("/"),
        duckdb_memory_limit=(env.get("MOVIELENS_DUCKDB_MEMORY_LIMIT") or None),
        duckdb_threads=_optional_int("MOVIELENS_DUCKDB_THREADS", env.get("MOVIELENS_DUCKDB_THREADS")),
        tmdb_read_access_token=_secret(env.get("TMDB_API_READ_ACCESS_TOKEN")),
        tmdb_api_key=_secret(env.get("TMDB_API_KEY")),
        tmdb_base_url=(env.get("TMDB_BASE_URL") or DEFAULT_TMDB_BASE_URL).strip().rstrip("/"),
        tmdb_language=(env.get("TMDB_LANGUAGE") or "en-US").strip(),
        tmdb_max_connections=_int_or("TMDB_MAX_CONNECTIONS", env.get("TMDB_MAX_CONNECTIONS"), 20),
        tmdb_rate_limit_per_s=_float_or("TMDB_RATE_LIMIT_PER_S", env.get("TMDB_RATE_LIMIT_PER_S"), 35.0),
        tmdb_timeout_s=_float_or("TMDB_TIMEOUT_S", env.get("TMDB_TIMEOUT_S"), 30.0),
        tmdb_required=_bool("TMDB_REQUIRED", env.get("TMDB_REQUIRED")),
        tmdb_max_age_days=_optional_float("TMDB_MAX_AGE_DAYS", env.get("TMDB_MAX_AGE_DAYS")),
        tmdb_refresh_cron=(env.get("TMDB_REFRESH_CRON") or DEFAULT_TMDB_REFRESH_CRON).strip(),
        device=_device("MOVIELENS_DEVICE", env.get("MOVIELENS_DEVICE")),
        embedding_backend=_choice("EMBEDDING_BACKEND", env.get("EMBEDDING_BACKEND"), "sentence-transformers",
                                  ("sentence-transformers", "openai")),
        embedding_model=(env.get("EMBEDDING_MODEL") or "").strip() or None,
        embedding_batch_size=_int_or("EMBEDDING_BATCH_SIZE", env.get("EMBEDDING_BATCH_SIZE"), 32),
        embedding_max_seq_length=_optional_int("EMBEDDING_MAX_SEQ_LENGTH", env.get("EMBEDDING_MAX_SEQ_LENGTH")),
        embedding_chunk_size=_int_or("EMBEDDING_CHUNK_SIZE", env.get("EMBEDDING_CHUNK_SIZE"), 2048),
        embedding_api_base_url=(
            (env.get("EMBEDDING_API_BASE_URL") or DEFAULT_EMBEDDING_API_BASE_URL).strip().rstrip("/")
        ),
        embedding_api_key=_secret(env.get("EMBEDDING_API_KEY")) or _secret(env.get("OPENAI_API_KEY")),
        embedding_api_key_env=("EMBEDDING_API_KEY" if _secret(env.get("EMBEDDING_API_KEY"))
                               else "OPENAI_API_KEY" if _secret(env.get("OPENAI_API_KEY")) else None),
        embedding_api_dimensions=_optional_int("EMBEDDING_API_DIMENSIONS", env.get("EMBEDDING_API_DIMENSIONS")),
        embedding_api_max_batch=_int_or("EMBEDDING_API_MAX_BATCH", env.get("EMBEDDING_API_MAX_BATCH"), 128),
        embedding_api_max_concurrency=_int_or("EMBEDDING_API_MAX_CONCURRENCY",
                                              env.get("EMBEDDING_API_MAX_CONCURRENCY"), 4),
        embedding_api_timeout_s=_float_or("EMBEDDING_API_TIMEOUT_S", env.get("EMBEDDING_API_TIMEOUT_S"), 60.0),
        ranking_shards=_ranking_shards(env.get("MOVIELENS_RANKING_SHARDS")),
        secrets_from_env=environ is None or environ is os.environ,
    )
