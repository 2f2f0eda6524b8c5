"""Blocking checks on the ingest tables: a failure stops downstream assets in the same run.

The rules themselves live in `core.data.quality` (shared with ingestion's fail-fast validation);
here they are re-run on the stored Parquet files, so a table written by other means is checked too.
"""


from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from movielens_assets.assets import ingest as ingest_assets
from movielens_assets.core.data import quality
from movielens_assets.resources import DataLake

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


def _result(v: quality.Violation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=v.ok,
        metadata={
            "rule": v.rule,
            "violations": v.count,
            "summary": quality.describe(v),
            "examples": dg.MetadataValue.json(v.examples),
        },
    )


def _check(
    asset: dg.AssetsDefinition,
    name: str,
    description: str,
    rule: Callable[[DataLake, "duckdb.DuckDBPyConnection"], quality.Violation],
    additional_deps: list[dg.AssetsDefinition] | None = None,
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=name,
        description=description,
        blocking=True,
        additional_deps=additional_deps or [],
    )
    def _c(lake: DataLake) -> dg.AssetCheckResult:
        with lake.duckdb() as con:
            return _result(rule(lake, con))

    return _c


a = ingest_assets
ingest_checks = [
    _check(a.ratings, "unique_user_movie", "Each (user_id, movie_id) pair is rated at most once.",
           lambda lake, con: quality.duplicate_pairs(con, lake.processed("ratings"), "user_id", "movie_id")),
    _check(a.ratings, "rating_domain", f"Every rating is in {quality.RATING_DOMAIN_TEXT}.",
           lambda lake, con: quality.rating_domain(con, lake.processed("ratings"))),
    _check(a.ratings, "no_null_ids", "user_id, movie_id, rating and timestamp are never NULL.",
           lambda lake, con: quality.null_values(con, lake.processed("ratings"),
                                                 ["user_id", "movie_id", "rating", "timestamp"])),
    _check(a.ratings, "rated_movies_exist", "Every rated movie_id is present in movies.",
           lambda lake, con: quality.orphan_references(con, lake.processed("ratings"), lake.processed("movies"),
                                                       "movie_id"),
           additional_deps=[a.movies]),
    _check(a.movies, "unique_movie_id", "movie_id is unique in movies.",
           lambda lake, con: quality.duplicate_keys(con, lake.processed("movies"), ["movie_id"])),
    _check(a.movies, "no_null_ids", "movie_id and title are never NULL.",
           lambda lake, con: quality.null_values(con, lake.processed("movies"), ["movie_id", "title"])),
    _check(a.links, "unique_movie_id", "movie_id is unique in links.",
           lambda lake, con: quality.duplicate_keys(con, lake.processed("links"), ["movie_id"])),
    _check(a.links, "no_null_ids", "movie_id is never NULL in links (tmdb_id may be).",
           lambda lake, con: quality.null_values(con, lake.processed("links"), ["movie_id"])),
    _check(a.tags, "no_null_ids", "user_id and movie_id are never NULL in tags.",
           lambda lake, con: quality.null_values(con, lake.processed("tags"), ["user_id", "movie_id"])),
]
