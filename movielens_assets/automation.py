"""Jobs and schedules.

`tmdb_refresh_schedule` (daily, RUNNING by default; `TMDB_REFRESH_CRON`, UTC) launches
`tmdb_refresh_job` = group `tmdb` with `tmdb_raw` in refresh mode: read `/movie/changes` since the
stored watermark (windows of at most 14 days), re-fetch only the changed movies MovieLens tracks,
rebuild the star tables; the watermark advances only once the star rebuild succeeded (see
`core.tmdb.enrich` and docs/TMDB.md). Without credentials, or on a synthetic dataset (payloads are
generated, not fetched), the tick is skipped with the reason.
"""


import dagster as dg

from movielens_assets.assets import tmdb as tmdb_assets
from movielens_assets.resources import MovieLensSource
from movielens_assets.resources.tmdb import CREDENTIALS_HINT, TMDbResource
from movielens_assets.settings import default

REFRESH_RUN_CONFIG = {"ops": {"tmdb_raw": {"config": {"refresh_changes": True}}}}

tmdb_refresh_job = dg.define_asset_job(
    "tmdb_refresh_job",
    selection=dg.AssetSelection.groups(tmdb_assets.GROUP),
    description="Refresh TMDb through the /movie/changes feed, then rebuild the star tables (run config "
                "`ops.tmdb_raw.config.refresh_changes: true`, set by tmdb_refresh_schedule).",
)


def build_tmdb_refresh_schedule(cron: str = default("tmdb_refresh_cron")) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="tmdb_refresh_schedule",
        cron_schedule=cron,
        execution_timezone="UTC",
        job=tmdb_refresh_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily TMDb refresh through the changes feed (skips without credentials or on synthetic data).",
    )
    def tmdb_refresh_schedule(
        context: dg.ScheduleEvaluationContext, tmdb: TMDbResource, movielens: MovieLensSource
    ) -> dg.RunRequest | dg.SkipReason:
        if not tmdb.has_credentials:
            return dg.SkipReason(f"no TMDb credentials, nothing to refresh: {CREDENTIALS_HINT}")
        try:
            kind = movielens.ref.kind
        except Exception as exc:  # a bad MOVIELENS_DATASET: say so instead of failing the tick
            return dg.SkipReason(f"MOVIELENS_DATASET is not usable: {exc}")
        if kind == "synthetic":
            return dg.SkipReason(
                f"{movielens.dataset} is synthetic: its TMDb payloads are generated offline, there is nothing "
                "to refresh from TMDb"
            )
        when = context.scheduled_execution_time
        return dg.RunRequest(
            run_key=when.isoformat() if when is not None else None,
            run_config=REFRESH_RUN_CONFIG,
            tags={"movielens/tmdb": "refresh"},
        )

    return tmdb_refresh_schedule


tmdb_refresh_schedule = build_tmdb_refresh_schedule()
