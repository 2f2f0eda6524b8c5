"""Wiring only: one Definitions object for the `movielens` code location."""

from __future__ import annotations

import dagster as dg

from movielens_assets.assets import ingest
from movielens_assets.checks.ingest import ingest_checks
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.settings import Settings, load_settings


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
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All assets, checks and resources; `settings` default to the environment."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest]),
        asset_checks=ingest_checks,
        resources=build_resources(settings or load_settings()),
    )


defs = build_definitions()
