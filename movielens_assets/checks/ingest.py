"""Blocking checks on the ingest tables: a failure stops downstream assets in the same run.

The rules live in `core.data.quality` (shared with ingestion's fail-fast validation). The single-table rules
are verified while the table is written and reported as check results by the ingest assets themselves
(`check_specs`, no second scan); here: the rules that need another table, run on the stored Parquet files.
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
        description=None if v.ok else quality.describe(v),
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
        missing = [d.key.to_user_string() for d in additional_deps or []
                   if not lake.processed(d.key.to_user_string()).is_file()]
        if missing:  # the other table this rule reads was never materialized: say so, not a raw IO error
            names = ", ".join(f"`{m}`" for m in missing)
            return dg.AssetCheckResult(passed=False, metadata={"missing": missing}, description=(
                f"cannot check: {names} not materialized yet ({lake.processed(missing[0])} is missing); "
                f"materialize it too, e.g. --select '{asset.key.to_user_string()},{','.join(missing)}'"))
        with lake.duckdb() as con:
            return _result(rule(lake, con))

    return _c


a = ingest_assets
ingest_checks = [
    # the single-table rules (unique keys, no NULL ids, the rating domain) are verified by the ingest itself
    # and reported from the asset body (assets/ingest.py): only the rule that needs another table stays here
    _check(a.ratings, "rated_movies_exist", "Every rated movie_id is present in movies.",
           lambda lake, con: quality.orphan_references(con, lake.processed("ratings"), lake.processed("movies"),
                                                       "movie_id"),
           additional_deps=[a.movies]),
]
