"""Group `ingest`: the MovieLens source -> typed Parquet tables -> EDA report."""

from collections.abc import Iterator

import dagster as dg

from movielens_assets.assets._catalog import OWNERS, asset_tags
from movielens_assets.assets._compute import compute
from movielens_assets.assets._metadata import parquet_table_metadata
from movielens_assets.core.data import quality
from movielens_assets.core.data.ingest import (
    DEFAULT_MEMORY_LIMIT,
    TABLES,
    Audit,
    CsvTable,
    ingest_csv,
    references_audit,
    verified_rules,
)
from movielens_assets.resources import DataLake, MovieLensSource

GROUP = "ingest"


@dg.asset(group_name=GROUP, kinds={"csv"}, owners=OWNERS, tags=asset_tags("data", "raw"))
def movielens_raw(
    context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource
) -> dg.MaterializeResult:
    """The MovieLens dataset as CSV files (ratings, movies, tags, links), where everything starts:
    downloaded and MD5-verified (GroupLens), generated (synthetic) or located (directory) ->
    `<data>/raw/<dataset>/*.csv` (`<data>/raw/<name>-seed<seed>/` for a synthetic one; a directory dataset
    stays where it is)."""
    csv_dir = movielens.fetch(lake.raw_dir, log=context.log.info)
    files = {p.name: round(p.stat().st_size / 2**20, 3) for p in sorted(csv_dir.glob("*.csv"))}
    context.log.info(f"dataset {movielens.dataset} ready in {csv_dir}: {files}")
    return dg.MaterializeResult(
        metadata={
            "dataset": movielens.dataset,
            "kind": movielens.ref.kind,
            "path": dg.MetadataValue.path(str(csv_dir)),
            "files_mb": dg.MetadataValue.json(files),
        }
    )


# The table rules a successful ingest guarantees (`core.data.ingest.verified_rules`), as blocking asset checks
# reported from the asset body: the ingest validated them while writing, so no check scans the table again.
# Checks needing another table (ratings -> movies) stay separate asset checks (checks/ingest.py).
def _check_name(table: str, rule: str) -> str:
    """The asset check's name of a verified rule (the names the checks have always had)."""
    if rule == quality.RATING_RULE:
        return "rating_domain"
    if rule.endswith("(positive integers)"):
        return "positive_ids"
    if rule.startswith("unique"):
        return "unique_user_movie" if table == "ratings" else "unique_movie_id"
    return "no_null_ids"


def _write_checks(spec: CsvTable) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(_check_name(spec.name, v.rule), asset=spec.name, blocking=True,
                              description=f"{v.rule} (verified while the table is written: no second scan)")
            for v in verified_rules(spec)]


# Write-audit-publish: a table listed here depends on its parent table (so a run building both builds the parent
# first) and is published only when every reference resolves in the parent as published; the previous version
# stays otherwise. Without a published parent the table is published and `rated_movies_exist` (checks/ingest.py)
# says what to materialize.
AUDITED_REFERENCES = {"ratings": "movies"}


def _audit(spec: CsvTable, lake: DataLake, dataset: str) -> Audit | None:
    """The audit of `spec` against its published parent; None without one (or when the parent was built from
    another dataset: then the rated_movies_exist check judges the pair)."""
    import pyarrow.parquet as pq

    parent = AUDITED_REFERENCES.get(spec.name)
    if parent is None or not lake.processed(parent).is_file():
        return None
    meta = pq.read_schema(lake.processed(parent)).metadata or {}
    if meta.get(b"movielens.dataset", dataset.encode()) != dataset.encode():
        return None
    return references_audit(lake.processed(parent), "movie_id", parent)


def _ingest_asset(spec: CsvTable) -> dg.AssetsDefinition:
    # a multi_asset only for `can_subset`: a selection of the table without its checks (a job, the UI) runs
    # the ingest and reports just the selected checks
    parents = [dg.AssetKey(AUDITED_REFERENCES[spec.name])] if spec.name in AUDITED_REFERENCES else []
    audited = (f" Published only when every movie_id is in the published `{AUDITED_REFERENCES[spec.name]}` "
               "(write-audit-publish: otherwise the previous version stays)." if parents else "")

    @dg.multi_asset(
        name=spec.name,
        specs=[dg.AssetSpec(spec.name, group_name=GROUP, deps=[movielens_raw, *parents], kinds={"duckdb", "parquet"},
                            owners=OWNERS, tags=asset_tags("data", "table"),
                            description=f"The MovieLens `{spec.name}` table -> `<data>/processed/{spec.name}.parquet`: "
                                        f"{spec.filename} parsed, typed, sorted by ({spec.order_by}) and validated "
                                        f"(the rules are this asset's checks).{audited}")],
        check_specs=_write_checks(spec),
        can_subset=True,
        **compute(spec.name),
    )
    def _asset(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource
               ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        csv_dir = movielens.csv_dir(lake.raw_dir)
        if movielens.ref.kind != "directory" and not csv_dir.is_dir():
            # a downloaded / generated dataset whose `movielens_raw` never ran here: say that, not "file not found"
            raise dg.Failure(description=(
                f"the {movielens.dataset} CSV files are not in {csv_dir}: `movielens_raw` was never materialized "
                f"in this data directory; materialize it too, e.g. --select 'movielens_raw,{spec.name}' "
                "(or --select 'group:ingest')"))
        with lake.duckdb(default_memory_limit=DEFAULT_MEMORY_LIMIT) as con:
            result = ingest_csv(
                con, spec, csv_dir, lake.processed(spec.name), dataset=movielens.dataset,
                audit=_audit(spec, lake, movielens.dataset),
            )
            metadata = parquet_table_metadata(con, result.path, dataset=movielens.dataset)
        rate = result.rows / result.seconds if result.seconds else 0.0
        context.log.info(f"{spec.name}: {result.rows:,} rows in {result.seconds:.1f}s ({rate:,.0f} rows/s)")
        if result.note:
            context.log.warning(result.note)
            metadata["note"] = result.note
        metadata["seconds"] = round(result.seconds, 3)
        yield dg.MaterializeResult(asset_key=spec.name, metadata=metadata)
        selected = {key.name for key in context.selected_asset_check_keys}
        for v in result.verified:
            if (name := _check_name(spec.name, v.rule)) in selected:
                yield dg.AssetCheckResult(asset_key=spec.name, check_name=name, passed=v.ok, metadata={
                    "rule": v.rule, "violations": v.count, "summary": quality.describe(v),
                    "verified": "while writing the table (the ingest fails on any violation)"})

    return _asset


ratings, movies, tags, links = (_ingest_asset(TABLES[name]) for name in ("ratings", "movies", "tags", "links"))


@dg.asset(group_name=GROUP, deps=[ratings, movies, tags, links], kinds={"duckdb", "markdown"}, owners=OWNERS,
          tags=asset_tags("data", "report"), **compute("eda_report"))
def eda_report(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource) -> dg.MaterializeResult:
    """A first look at the ingested tables — counts, sparsity, long tail, user activity, genres ->
    `<data>/reports/EDA_REPORT.md` with its PNG plots beside it (the report is also this asset's `report`
    metadata)."""
    from movielens_assets.core.reports.eda import build_eda_report

    with lake.duckdb() as con:
        result = build_eda_report(
            con,
            ratings=lake.processed("ratings"),
            movies=lake.processed("movies"),
            tags=lake.processed("tags"),
            links=lake.processed("links"),
            out_dir=lake.reports_dir,
            dataset=movielens.dataset,
        )
    s = result.stats
    context.log.info(f"EDA report written to {result.report_path}")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(result.markdown),
            "path": dg.MetadataValue.path(str(result.report_path)),
            "ratings": s["ratings"],
            "users": s["users"],
            "movies": s["movies"],
            "sparsity": s["sparsity"],
            "top10pct_movie_share": s["top10pct_movie_share"],
            "user_activity_median": s["user_activity"]["median"],
            "user_activity_mean": s["user_activity"]["mean"],
        }
    )
