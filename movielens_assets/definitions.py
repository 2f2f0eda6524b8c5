"""Wiring only: one Definitions object for the `movielens` code location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from movielens_assets.assets import features, ingest, ranking, recall, tmdb
from movielens_assets.automation import build_tmdb_refresh_schedule, tmdb_refresh_job
from movielens_assets.checks.features import feature_checks
from movielens_assets.checks.ingest import ingest_checks
from movielens_assets.checks.ranking import ranking_checks
from movielens_assets.checks.recall import recall_checks
from movielens_assets.checks.tmdb import tmdb_checks
from movielens_assets.executors import build_executor
from movielens_assets.partitions import RankingShards, ranking_shards
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice
from movielens_assets.resources.embedder import EmbedderResource
from movielens_assets.resources.tmdb import TMDbResource
from movielens_assets.settings import Settings, load_settings, resource_fields

RESOURCES: dict[str, type[dg.ConfigurableResource]] = {
    "lake": DataLake,
    "movielens": MovieLensSource,
    "tmdb": TMDbResource,
    "torch_device": TorchDevice,
    "ranking_shards": RankingShards,
    "embedder": EmbedderResource,
}
"""Resource key -> class; each is built from the settings routed to it (`settings.py`, `to=...`)."""


def _resource_value(settings: Settings, attribute: str) -> Any:
    """A setting as a resource field value. A secret read from the process environment becomes
    `dg.EnvVar(<its variable>)` (resolved at launch; the UI and the stored run/job snapshots show only
    the variable's name); settings built from an explicit mapping (tests) pass the value itself."""
    value = getattr(settings, attribute)
    source = settings.secret_sources.get(attribute)
    if source and value and settings.secrets_from_env:
        return dg.EnvVar(source)
    return str(value) if isinstance(value, Path) else value


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        key: cls(**{name: _resource_value(settings, attr) for name, attr in resource_fields(key).items()})
        for key, cls in RESOURCES.items()
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All assets, checks, resources, jobs, schedules and the executor; `settings` default to the environment."""
    settings = settings or load_settings()
    return dg.Definitions(
        assets=[*dg.load_assets_from_modules([ingest, tmdb, features, recall, ranking]),
                ranking.ranking_samples_asset(ranking_shards(settings.ranking_shards))],
        asset_checks=[*ingest_checks, *tmdb_checks, *feature_checks, *recall_checks, *ranking_checks],
        resources=build_resources(settings),
        jobs=[tmdb_refresh_job],
        schedules=[build_tmdb_refresh_schedule(settings.tmdb_refresh_cron)],
        executor=build_executor(settings.executor),  # None (MOVIELENS_EXECUTOR unset): Dagster's default
    )


defs = build_definitions()
