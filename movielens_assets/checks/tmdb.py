"""Blocking checks on the TMDb star tables, from `core.tmdb.star.check_star_schema`.

One `multi_asset_check` reads the star tables once and reports, per table:
`schema_matches` (columns and types equal STAR_TABLES), `primary_key_unique` (unique, not NULL),
`foreign_keys_resolve` (tables with foreign keys: every non-NULL reference exists in its dimension);
and on `movie_tmdb`: `consistency` (has_payload / tmdb_id_shared agree with the data) and
`coverage` (always passes; share of MovieLens movies with TMDb data and with an overview).
A failed check stops downstream assets in the same run.
"""


from collections.abc import Iterator
from typing import Any

import dagster as dg

from movielens_assets.core.tmdb.star import STAR_TABLES, CheckResult, check_star_schema
from movielens_assets.resources import DataLake
from movielens_assets.resources.tmdb import TMDbResource


def _specs() -> list[dg.AssetCheckSpec]:
    specs: list[dg.AssetCheckSpec] = []
    for name, spec in STAR_TABLES.items():
        specs.append(dg.AssetCheckSpec("schema_matches", asset=name, blocking=True,
                                       description="Columns and Arrow types equal STAR_TABLES."))
        specs.append(dg.AssetCheckSpec("primary_key_unique", asset=name, blocking=True,
                                       description=f"Primary key ({', '.join(spec.primary_key)}) unique and not NULL."))
        if spec.foreign_keys:
            refs = ", ".join(f"{'/'.join(fk.columns)} -> {fk.ref_table}" for fk in spec.foreign_keys)
            specs.append(dg.AssetCheckSpec("foreign_keys_resolve", asset=name, blocking=True,
                                           description=f"Every non-NULL reference exists: {refs}."))
    specs.append(dg.AssetCheckSpec("consistency", asset="movie_tmdb", blocking=True,
                                   description="has_payload and tmdb_id_shared agree with tmdb_movie and the counts."))
    specs.append(dg.AssetCheckSpec("coverage", asset="movie_tmdb", blocking=True,
                                   description="Share of MovieLens movies with TMDb data / with an overview "
                                               "(reported; always passes)."))
    return specs


def _value(v: Any) -> Any:
    if isinstance(v, (list, dict, tuple)):
        return dg.MetadataValue.json(v if not isinstance(v, tuple) else list(v))
    return v


def _meta(r: CheckResult) -> dict[str, Any]:
    return {"check": r.name, "summary": r.description, **{k: _value(v) for k, v in r.metadata.items()}}


def _merge(asset: str, check: str, results: list[CheckResult]) -> dg.AssetCheckResult:
    failed = [r for r in results if not r.passed]
    metadata: dict[str, Any] = {
        "checks": len(results),
        "failed": len(failed),
        "results": dg.MetadataValue.json({r.name: {"passed": r.passed, "description": r.description,
                                                   **r.metadata} for r in results}),
    }
    if failed:
        metadata["failures"] = dg.MetadataValue.md("\n".join(f"- `{r.name}`: {r.description}" for r in failed))
    return dg.AssetCheckResult(asset_key=asset, check_name=check, passed=not failed, metadata=metadata)


@dg.multi_asset_check(specs=_specs(), name="tmdb_star_checks", can_subset=False)
def tmdb_star_checks(lake: DataLake) -> Iterator[dg.AssetCheckResult]:
    out_dir = TMDbResource.star_dir(lake.processed_dir)
    results = {r.name: r for r in check_star_schema(out_dir)}
    for name, spec in STAR_TABLES.items():
        schema = results[f"schema:{name}"]
        yield dg.AssetCheckResult(asset_key=name, check_name="schema_matches", passed=schema.passed,
                                  metadata=_meta(schema))
        pk = results.get(f"pk:{name}", CheckResult(f"pk:{name}", False, "table missing or unreadable"))
        yield dg.AssetCheckResult(asset_key=name, check_name="primary_key_unique", passed=pk.passed,
                                  metadata=_meta(pk))
        if spec.foreign_keys:
            fks = [r for key, r in results.items() if key.startswith(f"fk:{name}.")]
            if len(fks) != len(spec.foreign_keys):
                fks.append(CheckResult(f"fk:{name}", False, "table missing or unreadable"))
            yield _merge(name, "foreign_keys_resolve", fks)
    missing = CheckResult("movie_tmdb:consistency", False, "movie_tmdb or tmdb_movie missing")
    consistency = results.get("movie_tmdb:consistency", missing)
    yield dg.AssetCheckResult(asset_key="movie_tmdb", check_name="consistency", passed=consistency.passed,
                              metadata=_meta(consistency))
    coverage = results.get("coverage")
    meta = _meta(coverage) if coverage is not None else {"summary": "movie_tmdb or tmdb_movie missing"}
    yield dg.AssetCheckResult(asset_key="movie_tmdb", check_name="coverage", passed=coverage is not None,
                              metadata=meta, severity=dg.AssetCheckSeverity.WARN)


tmdb_checks = [tmdb_star_checks]
