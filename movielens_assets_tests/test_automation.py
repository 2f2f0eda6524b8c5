"""The TMDb refresh schedule: tick evaluation, and refresh runs against the fake TMDb server
(changes feed, re-fetch counts at the server, watermark advanced only after a successful star rebuild)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest

from movielens_assets.automation import REFRESH_RUN_CONFIG
from movielens_assets.core.tmdb.enrich import CANDIDATE_FILE, WATERMARK_FILE, read_watermark
from movielens_assets.definitions import build_definitions, build_resources
from movielens_assets_tests.assets.test_tmdb_assets import (
    SERVER_MOVIES,
    TOKEN,
    TRACKED,
    failure_text,
    ingest,
    landing,
    mats,
    run,
    tmdb_env,
    write_dataset,
)
from movielens_assets_tests.helpers import make_settings
from movielens_assets_tests.servers.tmdb_fake import FakeTMDb, make_movie


def tick(settings, instance) -> dg.ScheduleExecutionData:
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("tmdb_refresh_schedule")
    # As a context manager: the resources (and the instance scope they enter) are released here,
    # not at garbage collection (which would leave Dagster's defs-state context pointing at a dead instance).
    with dg.build_schedule_context(instance=instance, resources=build_resources(settings),
                                   scheduled_execution_time=datetime(2026, 3, 1, 9, tzinfo=UTC)) as context:
        return schedule.evaluate_tick(context)


def test_tick_requests_a_refresh_run_with_credentials(tmp_path, instance):
    settings = make_settings(tmp_path, str(write_dataset(tmp_path / "csv")), TMDB_API_READ_ACCESS_TOKEN=TOKEN)
    data = tick(settings, instance)
    assert data.skip_message is None and len(data.run_requests) == 1
    request = data.run_requests[0]
    assert request.run_config == REFRESH_RUN_CONFIG
    assert request.run_config["ops"]["tmdb_raw"]["config"]["refresh_changes"] is True
    assert TOKEN not in json.dumps(request.run_config) and TOKEN not in json.dumps(dict(request.tags))


@pytest.mark.parametrize(
    ("dataset", "env", "reason"),
    [
        ("dir", {}, "no TMDb credentials"),
        ("synthetic-tiny", {"TMDB_API_READ_ACCESS_TOKEN": TOKEN}, "is synthetic"),
    ],
)
def test_tick_skips_with_a_reason(tmp_path, instance, dataset, env, reason):
    name = str(write_dataset(tmp_path / "csv")) if dataset == "dir" else dataset
    data = tick(make_settings(tmp_path, name, **env), instance)
    assert data.run_requests == [] and reason in data.skip_message
    if not env:
        assert "TMDB_API_READ_ACCESS_TOKEN" in data.skip_message


def _today() -> date:
    return datetime.now(UTC).date()


def _refresh(settings, instance, *, checks: bool = False) -> dg.ExecuteInProcessResult:
    """The schedule's job with the schedule's run config (its checks left out unless `checks`)."""
    job = build_definitions(settings).resolve_job_def("tmdb_refresh_job")
    if not checks:
        job = job.get_subset(asset_selection=set(job.asset_layer.selected_asset_keys), asset_check_selection=set())
    return job.execute_in_process(run_config=REFRESH_RUN_CONFIG, instance=instance, raise_on_error=False)


def _changes_queries(srv: FakeTMDb) -> list[tuple[date, date]]:
    return [(date.fromisoformat(r.query["start_date"]), date.fromisoformat(r.query["end_date"]))
            for r in srv.snapshot() if r.path == "/3/movie/changes"]


def _title(settings, tmdb_id: int) -> str:
    table = pq.read_table(settings.data_dir / "processed" / "tmdb" / "tmdb_movie.parquet").to_pylist()
    return next(r["title"] for r in table if r["tmdb_id"] == tmdb_id)


def test_refresh_refetches_only_changed_tracked_movies_and_advances_the_watermark(tmp_path, instance):
    today = _today()
    with FakeTMDb(SERVER_MOVIES, token=TOKEN) as srv:
        settings = make_settings(tmp_path, str(write_dataset(tmp_path / "csv")), **tmdb_env(srv))
        ingest(settings, instance)
        assert run(settings, instance, "group:tmdb", checks=False).success  # the initial full crawl
        root = landing(settings).root
        assert not (root / WATERMARK_FILE).exists()

        # TMDb changes: two tracked movies (one edited), one movie MovieLens does not have.
        srv.movies[5004] = {**make_movie(5004), "title": "Movie 5004 (director's cut)"}
        srv.changes.update({5004: [today], 5012: [today - timedelta(days=1)], 99_001: [today]})
        srv.reset_log()
        result = _refresh(settings, instance, checks=True)
        assert result.success, failure_text(result)
        assert result.get_asset_check_evaluations() and all(c.passed for c in result.get_asset_check_evaluations())

        # 5012 changed yesterday, before our crawl today fetched it: already current, not re-fetched.
        assert sorted(r.tmdb_id for r in srv.movie_records()) == [5004]  # nothing else re-fetched
        # First refresh: the window starts at the oldest fetch in the landing zone (today), no re-crawl.
        assert _changes_queries(srv) == [(today, today)]
        assert read_watermark(root) == today and not (root / CANDIDATE_FILE).exists()
        assert _title(settings, 5004) == "Movie 5004 (director's cut)"
        raw = mats(result)["tmdb_raw"]
        assert raw["mode"].value == "refresh" and raw["changes"].value["tracked_changed"] == 1
        assert raw["cached"].value == len(TRACKED) + 1 and raw["pending"].value == 0
        assert mats(result)["movie_tmdb"]["refresh_watermark"].value == today.isoformat()

        # The next refresh starts at the watermark day (1-day overlap) and re-fetches it again only
        # because it is still listed; a stale watermark walks windows of at most 14 days.
        (root / WATERMARK_FILE).write_text(json.dumps({"synced_through": (today - timedelta(days=30)).isoformat()}))
        srv.changes[5020] = [today - timedelta(days=25)]
        srv.reset_log()
        result = _refresh(settings, instance)
        assert result.success, failure_text(result)
        windows = _changes_queries(srv)
        assert windows[0][0] == today - timedelta(days=30) and windows[-1][1] == today
        assert all((b - a).days <= 13 for a, b in windows) and len(windows) == 3
        assert all(windows[i + 1][0] == windows[i][1] + timedelta(days=1) for i in range(len(windows) - 1))
        assert sorted(r.tmdb_id for r in srv.movie_records()) == [5004, 5012, 5020]
        assert read_watermark(root) == today


def test_watermark_stays_when_the_star_rebuild_fails(tmp_path, instance, monkeypatch):
    today = _today()
    before = today - timedelta(days=3)
    with FakeTMDb(SERVER_MOVIES, token=TOKEN) as srv:
        settings = make_settings(tmp_path, str(write_dataset(tmp_path / "csv")), **tmdb_env(srv))
        ingest(settings, instance)
        assert run(settings, instance, "key:tmdb_raw", checks=False).success
        root = landing(settings).root
        (root / WATERMARK_FILE).write_text(json.dumps({"synced_through": before.isoformat()}))
        srv.changes.update({5006: [today - timedelta(days=1)]})

        import movielens_assets.assets.tmdb as tmdb_assets

        def broken(*args, **kwargs):
            raise RuntimeError("star rebuild exploded")

        monkeypatch.setattr(tmdb_assets, "build_star_schema", broken)
        srv.reset_log()
        result = _refresh(settings, instance)
        assert not result.success and "star rebuild exploded" in failure_text(result)
        assert [r.tmdb_id for r in srv.movie_records()] == [5006]  # the landing zone was refreshed ...
        assert read_watermark(root) == before  # ... but the watermark did not move
        assert json.loads((root / CANDIDATE_FILE).read_text())["synced_through"] == today.isoformat()

        monkeypatch.undo()
        srv.reset_log()
        result = _refresh(settings, instance)  # the same window again; this time the rebuild succeeds
        assert result.success, failure_text(result)
        assert _changes_queries(srv) == [(before, today)]
        assert read_watermark(root) == today and not (root / CANDIDATE_FILE).exists()


def test_watermark_stays_when_a_changed_movie_cannot_be_refetched(tmp_path, instance):
    today = _today()
    # 5013: fine during the crawl, then a permanent 400 when the refresh re-fetches it.
    with FakeTMDb(SERVER_MOVIES, token=TOKEN, script={5013: ["ok", "400"]}) as srv:
        settings = make_settings(tmp_path, str(write_dataset(tmp_path / "csv")), **tmdb_env(srv))
        ingest(settings, instance)
        assert run(settings, instance, "key:tmdb_raw", checks=False).success
        root = landing(settings).root
        srv.changes.update({5013: [today]})
        result = _refresh(settings, instance)
        assert result.success, failure_text(result)  # the old payload is kept, the star is rebuilt
        raw = mats(result)["tmdb_raw"]
        assert raw["failed"].value == 1 and raw["changes"].value["candidate"] is None
        assert read_watermark(root) is None and not (root / CANDIDATE_FILE).exists()
        assert landing(settings).stats()["failed"] == 0  # a failed refresh never hides the stored payload
