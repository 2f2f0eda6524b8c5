"""Environment variables -> one typed settings object. The ONLY place the project reads os.environ.

Each setting is declared exactly once, as one field of `Settings` below:

    seed: int = setting("MOVIELENS_SEED", 42, _int, to="movielens.seed")
    \"\"\"Seed of the synthetic generator.\"\"\"

That line is the setting's attribute, type, environment variable, default (written nowhere else),
parser (a bad value is a ValueError naming the variable and the expected form) and the resource field
it feeds (`<resource key>.<field>`, or none for a setting used elsewhere, such as the schedule's cron).
Everything else derives from it:

- `load_settings` reads every declared variable through its parser;
- `definitions.build_resources` builds each resource from the fields routed to it (`resource_fields`),
  secrets as `dg.EnvVar(<the variable they came from>)` when read from the process environment;
- the resources' own field defaults are `default("<attribute>")`, i.e. this declaration;
- `.env.example` lists every declared variable (`env_names()`; a test checks it).

Device strings have one parser, `core/device.py`, used here, by the `torch_device` resource and by the
two-tower model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from movielens_assets.core.device import parse_device
from movielens_assets.core.text.store import DEFAULT_CHUNK_SIZE

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}

Parser = Callable[[str, str | None, Any], Any]
"""`parse(variable name, raw value or None, declared default) -> value`."""


# ------------------------------------------------------------------------------------------------ parsers
def _blank(raw: str | None) -> bool:
    return raw is None or raw.strip() == ""


def _text(name: str, raw: str | None, default: str) -> str:
    return (raw or default).strip()


def _url(name: str, raw: str | None, default: str) -> str:
    return (raw or default).strip().rstrip("/")


def _path(name: str, raw: str | None, default: Path) -> Path:
    """A local directory. An object-store URL (`s3://…`, `gs://…`) is refused: as a path it would become a local
    folder named `s3:` in the working directory, and the lake does not speak object storage yet."""
    import re

    if raw and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw.strip()):
        raise ValueError(f"environment variable {name} must be a local directory, got the URL {raw.strip()!r}: "
                         "object-store lakes (s3://…) are not supported yet; use a local path, e.g. a mounted "
                         "bucket")
    return Path(raw or default).expanduser().resolve()


def _optional_text(name: str, raw: str | None, default: None) -> str | None:
    """Stripped text; empty -> None (secrets, optional names)."""
    return (raw or "").strip() or None


def _number(name: str, raw: str | None, default: Any, kind: type, what: str) -> Any:
    if _blank(raw):
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be {what}, got {raw!r}") from exc


def _int(name: str, raw: str | None, default: int | None) -> int | None:
    return _number(name, raw, default, int, "an integer")


def _float(name: str, raw: str | None, default: float | None) -> float | None:
    return _number(name, raw, default, float, "a number")


def _bool(name: str, raw: str | None, default: bool) -> bool:
    text = (raw or "").strip().lower()
    if text == "":
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"environment variable {name} must be 1/0 (true/false, yes/no, on/off), got {raw!r}")


def _device(name: str, raw: str | None, default: str) -> str:
    try:
        return parse_device(default if _blank(raw) else raw, name)
    except ValueError as exc:
        raise ValueError(f"environment variable {exc}") from None


def _backend(name: str, raw: str | None, default: str) -> str:
    from movielens_assets.core.text.embedders import BACKENDS, EmbeddingConfigError, normalize_backend

    try:
        return normalize_backend(default if _blank(raw) else (raw or ""))
    except EmbeddingConfigError:
        raise ValueError(f"environment variable {name} must be one of {', '.join(BACKENDS)}; got {raw!r}") from None


def _executor(name: str, raw: str | None, default: str) -> str:
    from movielens_assets.executors import EXECUTORS

    value = (default if _blank(raw) else raw or "").strip().lower()
    if value not in EXECUTORS:
        raise ValueError(f"environment variable {name} must be one of {', '.join(EXECUTORS)}; got {raw!r}")
    return value


def _shards(name: str, raw: str | None, default: int) -> int:
    from movielens_assets.core.ranking.shards import MAX_SHARDS

    n = _int(name, raw, default)
    assert n is not None
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"environment variable {name} must be in 1..{MAX_SHARDS}, got {raw!r}")
    return n


# ------------------------------------------------------------------------------------------- declaration
@dataclass(frozen=True)
class _Spec:
    env: tuple[str, ...]
    """The variable; several = the first non-empty one wins (a fallback variable)."""
    parse: Parser
    to: tuple[str, ...] | None
    """(resource key, resource field) this setting feeds, if any."""
    secret: bool


def setting(env: str | tuple[str, ...], default: Any, parse: Parser, *, to: str | None = None,
            secret: bool = False) -> Any:
    """Declare a setting (see the module docstring); a `dataclasses.field` carrying its spec."""
    spec = _Spec(env=(env,) if isinstance(env, str) else tuple(env), parse=parse,
                 to=tuple(to.split(".", 1)) if to else None, secret=secret)
    return field(default=default, repr=not secret, metadata={"setting": spec})


@dataclass(frozen=True)
class Settings:
    # -- data lake and dataset --
    data_dir: Path = setting("MOVIELENS_DATA_DIR", Path("data"), _path, to="lake.root")
    """Root of the local data lake (relative paths resolve from the cwd)."""
    dataset: str = setting("MOVIELENS_DATASET", "synthetic-small", _text, to="movielens.dataset")
    """`ml-32m`, `ml-25m`, `ml-latest-small`, `ml-latest`, `synthetic-<size>` or a directory path."""
    seed: int = setting("MOVIELENS_SEED", 42, _int, to="movielens.seed")
    """Seed of the synthetic generator."""
    grouplens_url: str = setting("MOVIELENS_GROUPLENS_URL", "https://files.grouplens.org/datasets/movielens",
                                 _url, to="movielens.grouplens_url")
    """Base URL of the GroupLens downloads; tests point it at 127.0.0.1."""
    duckdb_memory_limit: str | None = setting("MOVIELENS_DUCKDB_MEMORY_LIMIT", None, _optional_text,
                                              to="lake.duckdb_memory_limit")
    """DuckDB `memory_limit` for heavy queries (e.g. `8GB`); empty = DuckDB's default (80% of RAM)."""
    duckdb_threads: int | None = setting("MOVIELENS_DUCKDB_THREADS", None, _int, to="lake.duckdb_threads")
    """DuckDB thread count; empty = all cores."""
    # -- TMDb enrichment (docs/TMDB.md) --
    tmdb_read_access_token: str | None = setting("TMDB_API_READ_ACCESS_TOKEN", None, _optional_text,
                                                 to="tmdb.read_access_token", secret=True)
    """TMDb API read access token (sent as Bearer; preferred). Secret."""
    tmdb_api_key: str | None = setting("TMDB_API_KEY", None, _optional_text, to="tmdb.api_key", secret=True)
    """TMDb v3 API key (sent as the api_key query parameter). Secret."""
    tmdb_base_url: str = setting("TMDB_BASE_URL", "https://api.themoviedb.org/3", _url, to="tmdb.base_url")
    """TMDb API root; tests and staging point it at a local server."""
    tmdb_language: str = setting("TMDB_LANGUAGE", "en-US", _text, to="tmdb.language")
    """`language` of the movie requests."""
    tmdb_max_connections: int = setting("TMDB_MAX_CONNECTIONS", 20, _int, to="tmdb.max_connections")
    """Concurrent connections of the crawler."""
    tmdb_rate_limit_per_s: float = setting("TMDB_RATE_LIMIT_PER_S", 35.0, _float, to="tmdb.rate_limit_per_s")
    """Requests per second the crawler never exceeds."""
    tmdb_timeout_s: float = setting("TMDB_TIMEOUT_S", 30.0, _float, to="tmdb.timeout_s")
    """Per-request timeout in seconds."""
    tmdb_required: bool = setting("TMDB_REQUIRED", False, _bool, to="tmdb.required")
    """`TMDB_REQUIRED=1`: missing credentials / links fail the run instead of an empty enrichment."""
    tmdb_max_age_days: float | None = setting("TMDB_MAX_AGE_DAYS", None, _float, to="tmdb.max_age_days")
    """A crawl also re-fetches payloads older than this (default: never; the changes-feed refresh keeps
    them current)."""
    tmdb_refresh_cron: str = setting("TMDB_REFRESH_CRON", "0 9 * * *", _text)
    """Cron (UTC) of `tmdb_refresh_schedule`: daily, 09:00 UTC (after TMDb's daily id export)."""
    # -- torch device and text embeddings (docs/EMBEDDINGS.md) --
    device: str = setting("MOVIELENS_DEVICE", "auto", _device, to="torch_device.device")
    """Torch device of every torch step: auto | cpu | cuda | cuda:N | mps (`core/device.py`)."""
    embedding_backend: str = setting("EMBEDDING_BACKEND", "sentence-transformers", _backend, to="embedder.backend")
    """`sentence-transformers` (local model) or `openai` (OpenAI-compatible API)."""
    embedding_model: str | None = setting("EMBEDDING_MODEL", None, _optional_text, to="embedder.model")
    """Hub id (`BAAI/bge-m3`), local directory, or the API's model name; empty = the packaged
    all-MiniLM-L6-v2 (offline) / `text-embedding-3-small` for the API."""
    embedding_batch_size: int = setting("EMBEDDING_BATCH_SIZE", 32, _int, to="embedder.batch_size")
    """Texts per forward pass of the local model."""
    embedding_max_seq_length: int | None = setting("EMBEDDING_MAX_SEQ_LENGTH", None, _int,
                                                   to="embedder.max_seq_length")
    """Token limit per text of the local model (empty = the model's own)."""
    embedding_chunk_size: int = setting("EMBEDDING_CHUNK_SIZE", DEFAULT_CHUNK_SIZE, _int, to="embedder.chunk_size")
    """Movies per stored embedding chunk: what an interrupted run keeps."""
    embedding_api_base_url: str = setting("EMBEDDING_API_BASE_URL", "https://api.openai.com/v1", _url,
                                          to="embedder.api_base_url")
    """OpenAI-compatible API root; `/embeddings` is appended."""
    embedding_api_key: str | None = setting(("EMBEDDING_API_KEY", "OPENAI_API_KEY"), None, _optional_text,
                                            to="embedder.api_key", secret=True)
    """`EMBEDDING_API_KEY`, else `OPENAI_API_KEY`. Secret."""
    embedding_api_dimensions: int | None = setting("EMBEDDING_API_DIMENSIONS", None, _int,
                                                   to="embedder.api_dimensions")
    """Requested vector size (text-embedding-3-*); empty = the model's own."""
    embedding_api_max_batch: int = setting("EMBEDDING_API_MAX_BATCH", 128, _int, to="embedder.api_max_batch")
    """Inputs per API request (the provider's cap)."""
    embedding_api_max_concurrency: int = setting("EMBEDDING_API_MAX_CONCURRENCY", 4, _int,
                                                 to="embedder.api_max_concurrency")
    """API requests in flight."""
    embedding_api_timeout_s: float = setting("EMBEDDING_API_TIMEOUT_S", 60.0, _float, to="embedder.api_timeout_s")
    """Per-request timeout of the API."""
    # -- ranking (docs/RANKING.md) --
    ranking_shards: int = setting("MOVIELENS_RANKING_SHARDS", 16, _shards, to="ranking_shards.shards")
    """User shards of `ranking_samples` (1..1000): its partitions `00`, `01`, …"""
    # -- execution (docs/SCALING.md) --
    executor: str = setting("MOVIELENS_EXECUTOR", "multiprocess", _executor)
    """Executor of the jobs: `multiprocess` (Dagster's default: a process per step) or `k8s` (a Kubernetes Job per
    step, dagster-k8s's k8s_job_executor; movielens_assets/executors.py)."""

    # -- how the settings were read (not environment variables) --
    secret_sources: dict[str, str] = field(default_factory=dict, repr=False, hash=False)
    """Secret attribute -> the variable its value came from (handed to Dagster as `dg.EnvVar(<name>)`)."""
    secrets_from_env: bool = False
    """True when the settings were read from the process environment: the secrets then reach Dagster as
    `dg.EnvVar`s (resolved at launch, shown by name only in the UI and run storage)."""

    @property
    def tmdb_has_credentials(self) -> bool:
        return bool(self.tmdb_read_access_token or self.tmdb_api_key)

    @property
    def embedding_api_key_env(self) -> str | None:
        """Which variable held the embedding API key (`EMBEDDING_API_KEY` or `OPENAI_API_KEY`)."""
        return self.secret_sources.get("embedding_api_key")


def _specs() -> list[tuple[str, _Spec, Any]]:
    """(attribute, spec, default) of every declared setting, in declaration order."""
    return [(f.name, f.metadata["setting"], f.default) for f in fields(Settings) if "setting" in f.metadata]


def default(attribute: str) -> Any:
    """The declared default of a setting (what a resource field defaults to)."""
    value = Settings.__dataclass_fields__[attribute].default
    if value is MISSING:  # pragma: no cover - every setting has a default
        raise KeyError(attribute)
    return value


def env_names() -> list[str]:
    """Every environment variable the settings read (all are listed in `.env.example`)."""
    return [name for _, spec, _ in _specs() for name in spec.env]


def resource_fields(resource: str) -> dict[str, str]:
    """Resource field -> settings attribute, for the resource `resource` (its key in `Definitions`)."""
    return {spec.to[1]: attr for attr, spec, _ in _specs() if spec.to and spec.to[0] == resource}


DEFAULT_DATASET: str = default("dataset")
DEFAULT_TMDB_REFRESH_CRON: str = default("tmdb_refresh_cron")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for attr, spec, declared in _specs():
        # the first variable with a non-blank value (a single variable: its value, blank or not)
        name = next((n for n in spec.env if not _blank(env.get(n))), spec.env[0])
        values[attr] = spec.parse(name, env.get(name), declared)
        if spec.secret and values[attr] is not None:
            sources[attr] = name
    return Settings(**values, secret_sources=sources, secrets_from_env=environ is None or environ is os.environ)
