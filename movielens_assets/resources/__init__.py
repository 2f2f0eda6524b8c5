"""Dagster resources: thin, configurable wrappers over `core/`."""

from movielens_assets.resources.lake import DataLake
from movielens_assets.resources.movielens import MovieLensSource

__all__ = ["DataLake", "MovieLensSource"]
