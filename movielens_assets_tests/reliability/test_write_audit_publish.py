"""Write-audit-publish for `ratings`: a table whose movie ids are not all in `movies` never replaces the published
`processed/ratings.parquet`; the previous version stays the one downstream assets read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from movielens_assets_tests.helpers import (
    MOVIES_CSV,
    RATINGS_CSV,
    failure_messages,
    make_settings,
    materialize,
    write_movielens_dir,
)

BAD_RATINGS = RATINGS_CSV + "4,99,4.0,978300760\n4,98,3.0,978300761\n"


def _published(settings) -> Path:
    return settings.data_dir / "processed" / "ratings.parquet"


def test_a_failed_audit_keeps_the_previous_ratings_and_blocks_downstream(tmp_path, instance):
    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    assert materialize(settings, instance, "group:ingest").success
    before = _published(settings).read_bytes()
    report = settings.data_dir / "reports" / "EDA_REPORT.md"
    report_before = report.read_bytes()

    (src / "ratings.csv").write_text(BAD_RATINGS)
    result = materialize(settings, instance, "group:ingest")
    assert not result.success
    message = " ".join(failure_messages(result)) + " ".join(
        str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
    assert "ratings.parquet not published: 2 movie_id value(s) absent from movies" in message
    assert "e.g. movie_id 98, 99" in message and "the previously published table is kept" in message
    assert _published(settings).read_bytes() == before  # the previous version is still the published one
    assert report.read_bytes() == report_before  # downstream did not run on the rejected table
    assert sorted(p.name for p in _published(settings).parent.iterdir()) == [
        "links.parquet", "movies.parquet", "ratings.parquet", "tags.parquet"]  # no staged file left


def test_ratings_alone_are_audited_against_the_published_movies(tmp_path, instance):
    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    assert materialize(settings, instance, "key:ratings or key:movies").success
    before = _published(settings).read_bytes()
    (src / "ratings.csv").write_text(BAD_RATINGS)
    result = materialize(settings, instance, "ratings")
    assert not result.success and _published(settings).read_bytes() == before


def test_new_movies_and_their_ratings_in_one_run_publish_both(tmp_path, instance):
    """`ratings` depends on `movies`: a run of both builds movies first, so ratings of new movies pass the audit."""
    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    assert materialize(settings, instance, "key:ratings or key:movies").success
    (src / "ratings.csv").write_text(BAD_RATINGS)
    (src / "movies.csv").write_text(MOVIES_CSV + "98,New A (2020),Drama\n99,New B (2021),Comedy\n")
    result = materialize(settings, instance, "key:ratings or key:movies")
    assert result.success, failure_messages(result)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["rated_movies_exist"] is True


def test_readme_cli_selection_still_works(tmp_path):
    """`dagster asset materialize -m movielens_assets.definitions --select 'ratings,movies'` (README): the real
    CLI, on a directory dataset, then the same with ratings of unknown movies (fails, previous table kept)."""
    src = write_movielens_dir(tmp_path / "csv")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOVIELENS_DATA_DIR": str(tmp_path / "lake"),
           "MOVIELENS_DATASET": str(src)}
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "movielens_assets.definitions",
           "--select", "movielens_raw,ratings,movies", "--config-json", '{"execution":{"config":{"in_process":{}}}}']
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    published = tmp_path / "lake" / "processed" / "ratings.parquet"
    before = published.read_bytes()
    (src / "ratings.csv").write_text(BAD_RATINGS)
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "2 movie_id value(s) absent from movies" in bad.stdout + bad.stderr
    assert published.read_bytes() == before
