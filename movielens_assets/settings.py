"""Environment variables -> one typed settings object. The ONLY place the project reads os.environ.

Every variable read here is listed in `.env.example`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = "synthetic-small"
DEFAULT_GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


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


def _optional_int(name: str, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from exc


def _int_or(name: str, value: str | None, default: int) -> int:
    parsed = _optional_int(name, value)
    return default if parsed is None else parsed


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
    )
