"""Group `tmdb`: the TMDb landing zone (`tmdb_raw`) -> the star schema (one asset per table).

The logic lives in `core.tmdb` (client, landing zone, enrichment run, star builder); these assets
choose the mode and report:

- synthetic dataset: the landing zone is seeded from the generator's payloads (offline, no key);
- real / directory dataset with credentials: resumable crawl (+ /find for movies without tmdbId);
  with `refresh_changes` (the refresh schedule) also the `/movie/changes` feed since the watermark;
- no credentials or no links: nothing is fetched, the star tables are still built (empty when the
  landing zone is) so every downstream asset runs; `TMDB_REQUIRED=1` makes that a failure.
"""


import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from movielens_assets.assets import ingest as ingest_assets
from movielens_assets.assets._catalog import OWNERS, asset_tags
from movielens_assets.assets._compute import compute
from movielens_assets.assets._metadata import markdown_table, parquet_table_metadata
from movielens_assets.core.tmdb.client import TMDbAuthError
from movielens_assets.core.tmdb.enrich import (
    WATERMARK_FILE,
    EnrichReport,
    FindState,
    commit_refresh_candidate,
    link_index,
    read_watermark,
    run_enrich,
)
from movielens_assets.core.tmdb.landing import LandingZone
from movielens_assets.core.tmdb.star import STAR_TABLES, build_star_schema
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.tmdb import CREDENTIALS_HINT, TMDbResource

GROUP = "tmdb"
SAMPLE = 20  # rows of the unresolved / shared samples in metadata


class TMDbRawConfig(dg.Config):
    """Run config of `tmdb_raw` (the refresh schedule sets `refresh_changes`)."""

    refresh_changes: bool = False
    """Also read /movie/changes since the watermark and re-fetch the changed movies we track."""


def _links(lake: DataLake):
    path = lake.processed("links")
    if not path.exists():
        raise dg.Failure(description=f"{path} does not exist: materialize `links` (group ingest) first")
    return pq.read_table(path)


def _zone_metadata(zone: LandingZone) -> dict[str, Any]:
    s = zone.stats()
    return {
        "dagster/row_count": s["ids"],
        "path": dg.MetadataValue.path(str(zone.root)),
        "landing_ok": s["ok"],
        "landing_not_found": s["not_found"],
        "landing_failed": s["failed"],
        "landing_ids": s["ids"],
        "landing_records": s["records"],
        "landing_chunks": s["chunks"],
        "landing_mb": round(s["bytes"] / 2**20, 3),
    }


def _samples(unresolved: list[tuple[int, str | None]], shared: dict[int, list[int]]) -> dict[str, Any]:
    md: dict[str, Any] = {
        "unresolved": len(unresolved),
        "shared_tmdb_ids": len(shared),
        "movies_with_shared_tmdb_id": sum(len(v) for v in shared.values()),
    }
    if unresolved:
        md["unresolved_movies"] = dg.MetadataValue.md(
            f"{len(unresolved):,} MovieLens movies have no TMDb id (no tmdbId in links, no /find match)"
            + (f"; first {SAMPLE}" if len(unresolved) > SAMPLE else "") + ":\n\n"
            + markdown_table(["movie_id", "imdb_id"], [(m, i or "") for m, i in unresolved[:SAMPLE]])
        )
    if shared:
        rows = sorted(shared.items())[:SAMPLE]
        md["shared_tmdb_id_movies"] = dg.MetadataValue.md(
            f"{len(shared):,} tmdb ids are shared by several MovieLens movies (each fetched once; every "
            "movie keeps its own `movie_tmdb` row, flagged `tmdb_id_shared`):\n\n"
            + markdown_table(["tmdb_id", "movie_ids"], [(t, ", ".join(map(str, ms))) for t, ms in rows])
        )
    return md


def _not_enriched(
    context: dg.AssetExecutionContext, zone: LandingZone, tmdb: TMDbResource, reason: str
) -> dg.MaterializeResult:
    """No crawl: fail under TMDB_REQUIRED, else an empty (unchanged) landing zone with a note."""
    if tmdb.required:
        raise dg.Failure(
            description=f"TMDB_REQUIRED=1: {reason}",
            metadata={"note": f"TMDB_REQUIRED=1: {reason}"},
        )
    note = (
        f"TMDb enrichment skipped: {reason} The TMDb star tables are built from what the landing zone "
        "already holds (empty on a first run) and downstream assets run without TMDb data. "
        "Set TMDB_REQUIRED=1 to make this a failure."
    )
    context.log.warning(note)
    return dg.MaterializeResult(metadata={"mode": "skipped", "note": note, "tmdb": tmdb.describe(),
                                          **_zone_metadata(zone)})


def _seed_synthetic(
    context: dg.AssetExecutionContext, zone: LandingZone, lake: DataLake, movielens: MovieLensSource
) -> dg.MaterializeResult:
    from movielens_assets.core.data.synthetic import tmdb as synthetic_tmdb

    # the generator writes <dataset dir>/tmdb/movie_details.jsonl.gz (synthetic_tmdb.iter_tmdb_payloads reads it)
    payload_file = movielens.csv_dir(lake.raw_dir) / "tmdb" / "movie_details.jsonl.gz"
    index = link_index(_links(lake))
    metadata: dict[str, Any] = {"mode": "synthetic"}
    if not payload_file.is_file():
        note = f"synthetic dataset without TMDb payloads ({payload_file} is missing): nothing seeded"
        context.log.warning(note)
        metadata["note"] = note
        seeded = 0
    else:
        start = time.monotonic()
        seeded = zone.seed_from_payloads(synthetic_tmdb.iter_tmdb_payloads(payload_file), fetched_at=time.time())
        context.log.info(
            f"TMDb landing zone seeded offline from {payload_file}: {seeded:,} new payloads "
            f"in {time.monotonic() - start:.1f}s (no API calls for synthetic datasets)"
        )
        metadata["source"] = dg.MetadataValue.path(str(payload_file))
    have = zone.fetched_ids()
    metadata.update({
        "seeded": seeded,
        "ok": seeded,
        "cached": max(0, sum(1 for t in index.wanted if t in have) - seeded),
        "not_found": 0,
        "failed": 0,
        "resolved": 0,
        "wanted": len(index.wanted),
        **_samples(index.unresolved, index.shared),
        **_zone_metadata(zone),
    })
    return dg.MaterializeResult(metadata=metadata)


def _report_metadata(report: EnrichReport) -> dict[str, Any]:
    c = report.counts()
    md: dict[str, Any] = {k: c[k] for k in (
        "mode", "wanted", "pending", "cached", "ok", "not_found", "failed", "requests", "retries",
        "rate_limited", "find_requests", "find_failed", "resolved_new", "resolved",
    )}
    md["rate"] = c["rate"]
    md["elapsed_s"] = c["elapsed_s"]
    md.update(_samples(report.unresolved, report.shared))
    if report.changes is not None:
        md["changes"] = dg.MetadataValue.json(report.changes)
    return md


@dg.asset(
    group_name=GROUP,
    deps=[ingest_assets.links, ingest_assets.movielens_raw],
    kinds={"python", "json"},
    owners=OWNERS,
    tags=asset_tags("data", "raw"),
)
def tmdb_raw(
    context: dg.AssetExecutionContext,
    config: TMDbRawConfig,
    lake: DataLake,
    movielens: MovieLensSource,
    tmdb: TMDbResource,
) -> dg.MaterializeResult:
    """The TMDb landing zone `<data>/raw/tmdb/`: raw movie-detail responses of The Movie Database (gzip
    JSON-lines chunks, append-only), the source of the TMDb star tables.

    Synthetic datasets: seeded from the generator's payloads. Otherwise a resumable, rate-limited
    crawl of every tmdbId in links (movies without one resolved through /find), and with
    `refresh_changes` the /movie/changes feed since the watermark.
    """
    zone = LandingZone(TMDbResource.landing_dir(lake.raw_dir))
    if movielens.ref.kind == "synthetic":
        if config.refresh_changes:
            context.log.info("synthetic dataset: TMDb payloads are generated offline, nothing to refresh")
        return _seed_synthetic(context, zone, lake, movielens)
    if not tmdb.has_credentials:
        return _not_enriched(context, zone, tmdb, f"no TMDb credentials. To enrich {movielens.dataset} with TMDb, "
                                                  f"{CREDENTIALS_HINT}.")
    links = _links(lake)
    if links.num_rows == 0:
        return _not_enriched(context, zone, tmdb, "the dataset has no links.csv (or it is empty), so no MovieLens "
                                                  "movie can be mapped to TMDb.")
    context.log.info(f"TMDb: {tmdb.describe()}; landing zone {zone.root}")
    try:
        report = run_enrich(
            tmdb.config(), zone, links,
            refresh_changes=config.refresh_changes,
            max_age_s=tmdb.max_age_s,
            log=context.log.info,
            progress_every_s=tmdb.progress_every_s,
        )
    except TMDbAuthError as exc:  # the message is scrubbed by the client: no secret in it
        stats = zone.stats()
        raise dg.Failure(
            description=(f"{exc} The crawl stopped; the {stats['ok']:,} payloads stored so far are kept and a "
                         f"rerun fetches only what is missing. Credentials: {CREDENTIALS_HINT}."),
            metadata={"landing_ok": stats["ok"], "auth": tmdb.auth_style},
        ) from None
    context.log.info(
        f"TMDb {report.mode}: fetched {report.ok:,} | not found {report.not_found:,} | failed {report.failed:,} "
        f"| cached {report.cached:,} | resolved {report.resolved_total:,} | unresolved {len(report.unresolved):,} "
        f"| {report.rate:.1f} req/s over {report.elapsed_s:.1f}s"
    )
    if report.failed:
        context.log.warning(f"{report.failed:,} movies failed for good this run; the next run retries them")
    if report.shared:
        context.log.info(f"{len(report.shared):,} tmdb ids are shared by several MovieLens movies "
                         "(fetched once, kept per movie in movie_tmdb)")
    return dg.MaterializeResult(metadata={**_report_metadata(report), "tmdb": tmdb.describe(),
                                          **_zone_metadata(zone)})


def _coverage_metadata(coverage: dict[str, Any]) -> dict[str, Any]:
    rows = [(k, f"{v:.1%}" if isinstance(v, float) else f"{v:,}") for k, v in coverage.items()]
    return {
        "coverage_with_payload_share": float(coverage["with_payload_share"]),
        "coverage_with_overview_share": float(coverage["with_overview_share"]),
        "coverage_movies": int(coverage["movies"]),
        "coverage_with_payload": int(coverage["with_payload"]),
        "coverage_with_overview": int(coverage["with_overview"]),
        "coverage": dg.MetadataValue.md(
            f"**{coverage['with_payload_share']:.1%}** of {coverage['movies']:,} MovieLens movies have TMDb data, "
            f"**{coverage['with_overview_share']:.1%}** have an overview.\n\n"
            + markdown_table(["measure", "value"], rows)
        ),
    }


@dg.multi_asset(
    name="tmdb_star",
    specs=[
        dg.AssetSpec(
            name,
            group_name=GROUP,
            deps=[tmdb_raw, ingest_assets.links],
            kinds={"duckdb", "parquet"},
            owners=OWNERS,
            tags=asset_tags("data", "table"),
            description=f"TMDb star schema {spec.kind} `<data>/processed/tmdb/{spec.file_name}`: {spec.doc}",
        )
        for name, spec in STAR_TABLES.items()
    ],
    can_subset=False,
    **compute("tmdb_star"),
)
def tmdb_star(
    context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource
) -> Iterator[dg.MaterializeResult]:
    """Every star table rebuilt from the landing zone (no API calls); commits a refresh watermark."""
    root = TMDbResource.landing_dir(lake.raw_dir)
    out_dir = TMDbResource.star_dir(lake.processed_dir)
    zone = LandingZone(root)
    resolved = FindState.load(root).resolved
    start = time.monotonic()
    report = build_star_schema(
        zone, lake.processed("links"), out_dir, resolved=resolved,
        memory_limit=lake.duckdb_memory_limit, threads=lake.duckdb_threads,
    )
    coverage = report["coverage"]
    context.log.info(
        f"TMDb star schema built in {time.monotonic() - start:.1f}s under {out_dir}: "
        f"{coverage['payloads_used']:,} movies, coverage {coverage['with_payload_share']:.1%} "
        f"(with overview {coverage['with_overview_share']:.1%}) of {coverage['movies']:,} MovieLens movies"
    )
    metadata: dict[str, dict[str, Any]] = {}
    with lake.duckdb() as con:
        for name in STAR_TABLES:
            md = parquet_table_metadata(con, Path(report[name]["path"]), dataset=movielens.dataset)
            if name in ("movie_tmdb", "tmdb_movie"):
                md.update(_coverage_metadata(coverage))
            if coverage["payloads_used"] == 0:
                md["note"] = ("no TMDb payloads for these MovieLens movies in the landing zone: the table is "
                              "empty (typed); see tmdb_raw for why")
            metadata[name] = md
    # Only now, with every table written: a refresh's candidate watermark becomes the watermark.
    committed = commit_refresh_candidate(root)
    if committed is not None:
        context.log.info(f"TMDb refresh watermark advanced to {committed['synced_through']} ({root / WATERMARK_FILE})")
    watermark = read_watermark(root)
    metadata["movie_tmdb"]["refresh_watermark"] = watermark.isoformat() if watermark else "none"
    for name, md in metadata.items():
        yield dg.MaterializeResult(asset_key=name, metadata=md)
