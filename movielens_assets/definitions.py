"""Wiring only: one Definitions object for the `movielens` code location."""

from __future__ import annotations

import dagster as dg

from movielens_assets.assets import features, ingest, ranking, recall, tmdb
from movielens_assets.automation import build_tmdb_refresh_schedule, tmdb_refresh_job
from movielens_assets.checks.features import feature_checks
from movielens_assets.checks.ingest import ingest_checks
from movielens_assets.checks.ranking import ranking_checks
from movielens_assets.checks.recall import recall_checks
from movielens_assets.checks.tmdb import tmdb_checks
from movielens_assets.partitions import RankingShards, ranking_shards
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice
from movielens_assets.resources.embedder import EmbedderResource
from movielens_assets.resources.tmdb import TMDbResource
from movielens_assets.settings import Settings, load_settings


def _secret(settings: Settings, env_name: str, value: str | None) -> str | dg.EnvVar | None:
    """A TMDb secret for the resource: `dg.EnvVar(env_name)` when the settings were read from the
    process environment (resolved at launch; the UI and the stored run/job snapshots show only the
    variable's name), else the value itself (settings built from an explicit mapping, e.g. tests)."""
    if not value:
        return None
    return dg.EnvVar(env_name) if settings.secrets_from_env else value


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "lake": DataLake(
            root=str(settings.data_dir),
            duckdb_memory_limit=settings.duckdb_memory_limit,
            duckdb_threads=settings.duckdb_threads,
        ),
        "movielens": MovieLensSource(
            dataset=settings.dataset, seed=settings.seed, grouplens_url=settings.grouplens_url
        ),
        "tmdb": TMDbResource(
            read_access_token=_secret(settings, "TMDB_API_READ_ACCESS_TOKEN", settings.tmdb_read_access_token),
            api_key=_secret(settings, "TMDB_API_KEY", settings.tmdb_api_key),
            base_url=settings.tmdb_base_url,
            language=settings.tmdb_language,
            max_connections=settings.tmdb_max_connections,
            rate_limit_per_s=settings.tmdb_rate_limit_per_s,
            timeout_s=settings.tmdb_timeout_s,
            required=settings.tmdb_required,
            max_age_days=settings.tmdb_max_age_days,
        ),
        "torch_device": TorchDevice(device=settings.device),
        "ranking_shards": RankingShards(shards=settings.ranking_shards),
        "embedder": EmbedderResource(
            backend=settings.embedding_backend,
            model=settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            max_seq_length=settings.embedding_max_seq_length,
            chunk_size=settings.embedding_chunk_size,
            api_base_url=settings.embedding_api_base_url,
            api_key=_secret(
                settings, settings.embedding_api_key_env or "EMBEDDING_API_KEY", settings.embedding_api_key
            ),
            api_dimensions=settings.embedding_api_dimensions,
            api_max_batch=settings.embedding_api_max_batch,
            api_max_concurrency=settings.embedding_api_max_concurrency,
            api_timeout_s=settings.embedding_api_timeout_s,
        ),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All assets, checks, resources, jobs and schedules; `settings` default to the environment."""
    settings = settings or load_settings()
    return dg.Definitions(
        assets=[*dg.load_assets_from_modules([ingest, tmdb, features, recall, ranking]),
                ranking.ranking_samples_asset(ranking_shards(settings.ranking_shards))],
        asset_checks=[*ingest_checks, *tmdb_checks, *feature_checks, *recall_checks, *ranking_checks],
        resources=build_resources(settings),
        jobs=[tmdb_refresh_job],
        schedules=[build_tmdb_refresh_schedule(settings.tmdb_refresh_cron)],
    )


defs = build_definitions()
