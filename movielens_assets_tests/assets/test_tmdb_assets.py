"""The tmdb group end to end, in process: offline on synthetic data, and crawling the faithful fake
TMDb server on 127.0.0.1 (every count is measured at the server)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.tmdb.enrich import FIND_FILE, FindState
from movielens_assets.core.tmdb.landing import LandingZone
from movielens_assets.core.tmdb.star import STAR_TABLES
from movielens_assets.definitions import build_definitions
from movielens_assets.settings import Settings, load_settings
from movielens_assets_tests.helpers import make_settings, materialize_all, write_movielens_dir
from movielens_assets_tests.servers.tmdb_fake import FakeTMDb, make_movie, make_movies

TOKEN = "eyJhbGciOiJIUzI1NiJ9.dGVzdC1yZWFkLXRva2Vu.c2VjcmV0LXNpZ25hdHVyZQ"
STAR = list(STAR_TABLES)

# A directory dataset of 30 movies: movie m -> tmdb 5000 + m, except
#   7: no tmdbId, its IMDb id resolves through /find to tmdb 7777 (only reachable that way)
#   8: no tmdbId, an IMDb id TMDb does not know (stays unresolved)
#   10: shares tmdb 5009 with movie 9 (a duplicate tmdbId across MovieLens movies)
#   11: tmdb 404404, unknown to TMDb (404)
N_MOVIES = 30
FIND_MOVIE, UNRESOLVED_MOVIE, SHARED, NOT_FOUND = 7, 8, (9, 10), 404404


def _tmdb_of(m: int) -> int | None:
    return {FIND_MOVIE: None, UNRESOLVED_MOVIE: None, 10: 5009, 11: NOT_FOUND}.get(m, 5000 + m)


def _imdb_of(m: int) -> str:
    return {FIND_MOVIE: "0007777", UNRESOLVED_MOVIE: "9999999"}.get(m, f"{900000 + m:07d}")


TRACKED = sorted({t for m in range(1, N_MOVIES + 1) if (t := _tmdb_of(m)) and t != NOT_FOUND} | {7777})
SERVER_MOVIES = {**make_movies(TRACKED), 99_001: make_movie(99_001)}  # 99001: on TMDb, not in MovieLens


def write_dataset(root: Path, *, links: bool = True) -> Path:
    movies = "movieId,title,genres\n" + "".join(f"{m},Movie {m} (1999),Drama\n" for m in range(1, N_MOVIES + 1))
    links_csv = "movieId,imdbId,tmdbId\n" + "".join(
        f"{m},{_imdb_of(m)},{_tmdb_of(m) or ''}\n" for m in range(1, N_MOVIES + 1)
    )
    write_movielens_dir(root, movies=movies, links=False)
    if links:
        (root / "links.csv").write_text(links_csv, encoding="utf-8")
    return root


def tmdb_env(srv: FakeTMDb | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {"TMDB_RATE_LIMIT_PER_S": "400", "TMDB_MAX_CONNECTIONS": "8", "TMDB_TIMEOUT_S": "2", **extra}
    if srv is not None:
        env["TMDB_BASE_URL"] = srv.base_url
    if token:
        env["TMDB_API_READ_ACCESS_TOKEN"] = token
    return env


def mats(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {f"{c.asset_key.to_user_string()}:{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    )


def log_text(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(repr(e) for e in instance.all_logs(result.run_id))


def landing(settings) -> LandingZone:
    return LandingZone(settings.data_dir / "raw" / "tmdb")


def star_rows(settings, table: str) -> int:
    return pq.read_metadata(settings.data_dir / "processed" / "tmdb" / f"{table}.parquet").num_rows


LINKS = "key:movielens_raw or key:links"  # all that the tmdb group needs from ingest
WITH_TMDB = f"{LINKS} or group:tmdb"


def run(settings: Settings, instance: dg.DagsterInstance, selection: str, *, checks: bool = True
        ) -> dg.ExecuteInProcessResult:
    """Like helpers.materialize_all; `checks=False` leaves the asset checks out (faster)."""
    if checks:
        return materialize_all(settings, instance, selection)
    defs = build_definitions(settings)
    keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(keys), asset_check_selection=set()
    )
    return job.execute_in_process(instance=instance, raise_on_error=False)


def ingest(settings, instance) -> None:
    assert run(settings, instance, LINKS, checks=False).success


# -- offline ---------------------------------------------------------------------------------------


def test_synthetic_dataset_builds_the_star_offline(tmp_path, instance):
    settings = make_settings(tmp_path, "synthetic-tiny", TMDB_BASE_URL="http://127.0.0.1:9/3")  # never called
    result = materialize_all(settings, instance, "group:ingest or group:tmdb")
    assert result.success, failure_text(result)
    m = mats(result)
    assert {"tmdb_raw", *STAR} <= set(m)
    raw = m["tmdb_raw"]
    assert raw["mode"].value == "synthetic" and raw["seeded"].value > 700
    assert raw["landing_ok"].value == raw["seeded"].value and raw["landing_failed"].value == 0
    for table in ("tmdb_movie", "tmdb_person", "tmdb_genre", "tmdb_cast", "tmdb_crew", "tmdb_movie_keyword",
                  "tmdb_release_date", "movie_tmdb"):
        assert m[table]["dagster/row_count"].value > 0, table
        assert m[table]["path"].value.endswith(f"processed/tmdb/{table}.parquet")
    cols = [c.name for c in m["tmdb_movie"]["dagster/column_schema"].schema.columns]
    assert cols == STAR_TABLES["tmdb_movie"].column_names
    cov = m["movie_tmdb"]["coverage_with_payload_share"].value
    assert 0.9 < cov <= 1.0 and m["movie_tmdb"]["coverage_with_overview_share"].value > 0.9
    assert "of 800 MovieLens movies have TMDb data" in m["movie_tmdb"]["coverage"].value
    evaluated = checks(result)
    assert all(evaluated.values())
    assert {"tmdb_cast:primary_key_unique", "tmdb_cast:foreign_keys_resolve", "movie_tmdb:coverage",
            "tmdb_movie_genre:foreign_keys_resolve", "tmdb_person:schema_matches"} <= set(evaluated)

    # A second run seeds nothing new and rebuilds byte-identical tables.
    before = (settings.data_dir / "processed" / "tmdb" / "tmdb_cast.parquet").read_bytes()
    again = run(settings, instance, "group:tmdb", checks=False)
    assert again.success and mats(again)["tmdb_raw"]["seeded"].value == 0
    assert (settings.data_dir / "processed" / "tmdb" / "tmdb_cast.parquet").read_bytes() == before


@pytest.mark.parametrize("case", ["no-credentials", "no-links"])
def test_real_dataset_without_credentials_or_links_gives_empty_typed_star(tmp_path, instance, case):
    src = write_dataset(tmp_path / "csv", links=case != "no-links")
    env = tmdb_env(None, token=None if case == "no-credentials" else TOKEN, TMDB_BASE_URL="http://127.0.0.1:9/3")
    settings = make_settings(tmp_path, str(src), **env)
    result = run(settings, instance, WITH_TMDB, checks=case == "no-credentials")
    assert result.success, failure_text(result)
    m = mats(result)
    note = m["tmdb_raw"]["note"].value
    assert "TMDb enrichment skipped" in note and "TMDB_REQUIRED=1" in note
    if case == "no-credentials":
        assert "TMDB_API_READ_ACCESS_TOKEN" in note and "make demo" in note
    else:
        assert "links.csv" in note
    assert "TMDb enrichment skipped" in log_text(instance, result)
    for table in STAR:
        assert table in m, table
        assert pq.read_schema(settings.data_dir / "processed" / "tmdb" / f"{table}.parquet") == \
            STAR_TABLES[table].schema
    assert m["tmdb_movie"]["dagster/row_count"].value == 0
    assert m["movie_tmdb"]["dagster/row_count"].value == (N_MOVIES if case == "no-credentials" else 0)
    assert m["movie_tmdb"]["coverage_with_payload_share"].value == 0.0
    evaluated = {k: v for k, v in checks(result).items() if k.split(":")[0] in STAR_TABLES}
    n_checks = 2 * len(STAR) + sum(1 for t in STAR_TABLES.values() if t.foreign_keys) + 2
    assert all(evaluated.values()) and len(evaluated) == (n_checks if case == "no-credentials" else 0)


def test_tmdb_required_turns_missing_credentials_into_a_failure(tmp_path, instance):
    src = write_dataset(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src), TMDB_REQUIRED="1")
    ingest(settings, instance)
    result = run(settings, instance, "group:tmdb", checks=False)
    assert not result.success
    text = failure_text(result)
    assert "TMDB_REQUIRED=1: no TMDb credentials" in text and "TMDB_API_READ_ACCESS_TOKEN" in text
    assert not (set(mats(result)) & {"tmdb_raw", *STAR})


# -- crawling the fake server ----------------------------------------------------------------------


def test_full_crawl_fetches_every_movie_exactly_once_despite_faults_and_a_rerun_fetches_nothing(tmp_path, instance):
    # Scripted faults on some ids (5xx bursts, a reset, truncated JSON) plus 10 % random ones.
    script = {5001: ["503", "502", "ok"], 5002: ["reset", "ok"], 5003: ["malformed", "504", "ok"],
              7777: ["500", "ok"]}
    with FakeTMDb(SERVER_MOVIES, token=TOKEN, script=script, fault_rate=0.1,
                  fault_mix=("502", "503", "504", "reset", "malformed"), seed=3) as srv:
        src = write_dataset(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **tmdb_env(srv))
        result = run(settings, instance, WITH_TMDB)
        assert result.success, failure_text(result)

        fetched = srv.successful_fetches()
        assert fetched == Counter({t: 1 for t in TRACKED}), "every tracked movie exactly once"
        assert [r.status for r in srv.movie_records(NOT_FOUND)][-1:] == [404]  # a 404 is final: not retried
        assert sum(r.status == 404 for r in srv.movie_records(NOT_FOUND)) == 1 and srv.requests_for(99_001) == 0
        faults = Counter(r.fault for r in srv.movie_records() if r.fault)
        assert faults["503"] and faults["reset"] and faults["malformed"]

        zone = landing(settings).stats()
        assert (zone["ok"], zone["not_found"], zone["failed"]) == (len(TRACKED), 1, 0)
        m = mats(result)
        raw = m["tmdb_raw"]
        assert raw["ok"].value == len(TRACKED) and raw["not_found"].value == 1 and raw["failed"].value == 0
        assert raw["cached"].value == 0 and raw["resolved"].value == 1 and raw["unresolved"].value == 1
        assert raw["rate"].value > 0 and raw["retries"].value >= 6
        assert raw["shared_tmdb_ids"].value == 1 and raw["movies_with_shared_tmdb_id"].value == 2
        assert "| 5009 | 9, 10 |" in raw["shared_tmdb_id_movies"].value
        assert f"| {UNRESOLVED_MOVIE} | tt9999999 |" in raw["unresolved_movies"].value
        assert FindState.load(landing(settings).root).resolved == {FIND_MOVIE: 7777}
        assert "TMDb crawl finished" in log_text(instance, result) and "req/s" in log_text(instance, result)

        # The star: /find-resolved movie joined, the shared tmdb id kept per movie, the 404 explained.
        movie_tmdb = pq.read_table(settings.data_dir / "processed" / "tmdb" / "movie_tmdb.parquet").to_pylist()
        by_movie = {r["movie_id"]: r for r in movie_tmdb}
        assert by_movie[FIND_MOVIE]["tmdb_id"] == 7777 and by_movie[FIND_MOVIE]["source"] == "find"
        assert by_movie[9]["tmdb_id_shared"] and by_movie[10]["tmdb_id_shared"] and by_movie[10]["has_payload"]
        assert by_movie[11]["landing_outcome"] == "not_found" and by_movie[UNRESOLVED_MOVIE]["tmdb_id"] is None
        assert star_rows(settings, "tmdb_movie") == len(TRACKED)
        assert m["movie_tmdb"]["coverage_with_payload"].value == N_MOVIES - 2  # 8 unresolved, 11 not found
        assert all(checks(result).values())

        # A rerun asks TMDb for nothing: no movie, no /find (the miss is remembered too).
        srv.reset_log()
        rerun = run(settings, instance, "group:tmdb", checks=False)
        assert rerun.success, failure_text(rerun)
        assert srv.snapshot() == []
        assert mats(rerun)["tmdb_raw"]["cached"].value == len(TRACKED) + 1


def test_a_crawl_stopped_midway_resumes_without_refetching(tmp_path, instance):
    with FakeTMDb(SERVER_MOVIES, token=TOKEN) as srv:
        src = write_dataset(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **tmdb_env(srv, TMDB_MAX_CONNECTIONS="2"))
        ingest(settings, instance)
        srv.inject(*["ok"] * 12, "401")  # the 13th request is refused: the run stops there
        first = run(settings, instance, "group:tmdb", checks=False)
        assert not first.success
        assert "TMDb rejected the credentials (HTTP 401" in failure_text(first)
        stored = landing(settings).fetched_ids()
        assert 5 <= len(stored) <= 12, stored  # kept, although the run failed
        assert not (set(mats(first)) & set(STAR))

        srv.reset_log()
        second = run(settings, instance, "group:tmdb", checks=False)
        assert second.success, failure_text(second)
        refetched = {r.tmdb_id for r in srv.movie_records()}
        assert not refetched & stored, "a stored movie was fetched again"
        assert refetched == (set(TRACKED) | {NOT_FOUND}) - stored
        assert landing(settings).fetched_ids() == set(TRACKED) | {NOT_FOUND}
        assert mats(second)["tmdb_raw"]["cached"].value == len(stored)


def test_rejected_credentials_fail_the_run_without_leaking_them(tmp_path, instance):
    wrong = "eyJ-this-is-the-WRONG-token-" + "q" * 20
    with FakeTMDb(SERVER_MOVIES, token=TOKEN) as srv:
        src = write_dataset(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **tmdb_env(srv, token=wrong))
        ingest(settings, instance)
        result = run(settings, instance, "group:tmdb", checks=False)
        assert not result.success
        text = failure_text(result)
        assert "TMDb rejected the credentials (HTTP 401" in text and "TMDB_API_READ_ACCESS_TOKEN" in text
        assert srv.status_counts()[401] >= 1
        assert wrong not in text and wrong not in log_text(instance, result)
        for event in instance.all_logs(result.run_id):
            assert wrong not in str(event.dagster_event)


def test_secrets_from_the_environment_reach_no_storage(tmp_path, monkeypatch):
    """Settings read from the process environment pass the token as dg.EnvVar: it is resolved at
    launch and never stored — not in run records, job snapshots, event logs or compute logs."""
    wrong = "eyJ-ENV-SECRET-" + "z" * 24
    with FakeTMDb(SERVER_MOVIES, token=TOKEN) as srv:
        src = write_dataset(tmp_path / "csv")
        env = {"MOVIELENS_DATA_DIR": str(tmp_path / "lake"), "MOVIELENS_DATASET": str(src),
               **tmdb_env(srv, token=wrong)}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        settings = load_settings()
        assert settings.secrets_from_env and wrong not in repr(settings)
        home = tmp_path / "home"
        home.mkdir()
        with dg.instance_for_test(temp_dir=str(home)) as inst:
            result = run(settings, inst, WITH_TMDB, checks=False)
            assert not result.success and "HTTP 401" in failure_text(result)
            assert srv.status_counts()[401] >= 1  # the EnvVar was resolved and sent
            record = inst.get_run_by_id(result.run_id)
            stored = [record, inst.get_job_snapshot(record.job_snapshot_id),
                      inst.get_execution_plan_snapshot(record.execution_plan_snapshot_id),
                      *inst.all_logs(result.run_id)]
            # (a plain-string resource field would be a config default in the job snapshot)
            assert [type(x).__name__ for x in stored if wrong in dg.serialize_value(x)] == []
        leaks = [p for p in home.rglob("*") if p.is_file() and wrong.encode() in p.read_bytes()]
        assert leaks == []
        lake = tmp_path / "lake"
        assert [p for p in lake.rglob("*") if p.is_file() and wrong.encode() in p.read_bytes()] == []


def test_api_key_auth_and_find_state_is_reused(tmp_path, instance):
    key = "0123456789abcdef0123456789abcdef"
    with FakeTMDb(SERVER_MOVIES, api_key=key) as srv:
        src = write_dataset(tmp_path / "csv")
        env = tmdb_env(srv, token=None, TMDB_API_KEY=key)
        settings = make_settings(tmp_path, str(src), **env)
        result = run(settings, instance, WITH_TMDB, checks=False)
        assert result.success, failure_text(result)
        assert {r.auth for r in srv.snapshot()} == {"api_key"}
        assert mats(result)["tmdb_raw"]["tmdb"].value["auth"] == "api_key"
        assert key not in log_text(instance, result)
        finds = [r for r in srv.snapshot() if r.path.startswith("/3/find/")]
        assert sorted(r.path for r in finds) == ["/3/find/tt0007777", "/3/find/tt9999999"]
        assert (landing(settings).root / FIND_FILE).is_file()


def test_tmdb_settings_defaults_parsing_and_hidden_secrets():
    s = load_settings({})
    assert (s.tmdb_base_url, s.tmdb_language, s.tmdb_max_connections, s.tmdb_rate_limit_per_s) == (
        "https://api.themoviedb.org/3", "en-US", 20, 35.0)
    assert not s.tmdb_required and not s.tmdb_has_credentials and s.tmdb_max_age_days is None
    s = load_settings({"TMDB_API_READ_ACCESS_TOKEN": f" {TOKEN} ", "TMDB_REQUIRED": "yes",
                       "TMDB_RATE_LIMIT_PER_S": "12.5", "TMDB_BASE_URL": "http://127.0.0.1:9/3/",
                       "TMDB_MAX_AGE_DAYS": "30"})
    assert s.tmdb_read_access_token == TOKEN and s.tmdb_has_credentials and s.tmdb_required
    assert (s.tmdb_rate_limit_per_s, s.tmdb_base_url, s.tmdb_max_age_days) == (12.5, "http://127.0.0.1:9/3", 30.0)
    assert TOKEN not in repr(s) and not s.secrets_from_env
    with pytest.raises(ValueError, match="TMDB_REQUIRED must be 1/0"):
        load_settings({"TMDB_REQUIRED": "maybe"})
    with pytest.raises(ValueError, match="TMDB_RATE_LIMIT_PER_S must be a number"):
        load_settings({"TMDB_RATE_LIMIT_PER_S": "fast"})
    resource = build_definitions(s).resources["tmdb"]
    assert resource.config().read_access_token == TOKEN and resource.max_age_s == 30 * 86400
    assert TOKEN not in repr(resource.describe())
