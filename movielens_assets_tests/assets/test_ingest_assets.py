"""The ingest group end to end, in process, on directory datasets written by the tests."""

from __future__ import annotations

import dagster as dg

from movielens_assets_tests.helpers import make_settings, materialize_all, write_movielens_dir

INGEST = ["movielens_raw", "ratings", "movies", "tags", "links", "eda_report"]


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {f"{c.asset_key.to_user_string()}:{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}


def test_directory_dataset_full_ingest(tmp_path, instance):
    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    result = materialize_all(settings, instance, "group:ingest")
    assert result.success
    mats = _materialized(result)
    assert sorted(mats) == sorted(INGEST)
    assert mats["ratings"]["dagster/row_count"].value == 8
    assert mats["movies"]["dagster/row_count"].value == 4
    assert mats["links"]["dagster/row_count"].value == 4
    assert [c.name for c in mats["ratings"]["dagster/column_schema"].schema.columns] == [
        "user_id", "movie_id", "rating", "timestamp",
    ]
    assert "| user_id | movie_id | rating | timestamp |" in mats["ratings"]["preview"].value
    assert mats["ratings"]["dataset"].value == str(src)
    assert all(_checks(result).values()) and len(_checks(result)) >= 9
    report = settings.data_dir / "reports" / "EDA_REPORT.md"
    text = report.read_text()
    assert "| ratings | 8 |" in text and "| users | 3 |" in text
    assert mats["eda_report"]["report"].value == text
    for plot in ("rating_histogram", "long_tail", "user_activity", "ratings_per_year"):
        png = settings.data_dir / "reports" / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optional_files_absent_materialize_empty_with_note(tmp_path, instance):
    src = write_movielens_dir(tmp_path / "csv", tags=False, links=False)
    settings = make_settings(tmp_path, str(src))
    result = materialize_all(settings, instance, "group:ingest")
    assert result.success
    mats = _materialized(result)
    for table in ("tags", "links"):
        assert mats[table]["dagster/row_count"].value == 0
        assert f"{table}.csv is absent" in mats[table]["note"].value
    assert "| tags | 0 |" in (settings.data_dir / "reports" / "EDA_REPORT.md").read_text()


def test_ratings_with_unknown_movies_are_not_published_and_stop_downstream(tmp_path, instance):
    """A rating that points at a movie missing from movies.csv: `ratings` depends on `movies`, so the run builds
    movies first, audits the staged ratings against it and does not publish them (write-audit-publish); the EDA
    report (downstream) is then not materialized in the same run."""
    movies_without_4 = "movieId,title,genres\n1,A (1995),Comedy\n2,B (1995),Drama\n3,C (1995),Action\n"
    src = write_movielens_dir(tmp_path / "csv", movies=movies_without_4)
    settings = make_settings(tmp_path, str(src))
    result = materialize_all(settings, instance, "group:ingest")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "ratings")
    message = str(failure.step_failure_data.error)
    assert "ratings.parquet not published: 1 movie_id value(s) absent from movies" in message
    assert "e.g. movie_id 4" in message and "nothing was published" in message
    assert not (settings.data_dir / "processed" / "ratings.parquet").exists()
    assert "eda_report" not in _materialized(result) and "ratings" not in _materialized(result)


def test_bad_input_fails_the_asset_and_keeps_previous_table(tmp_path, instance):
    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    assert materialize_all(settings, instance, "group:ingest").success
    stored = settings.data_dir / "processed" / "ratings.parquet"
    before = stored.read_bytes()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n1,1,3.0,6\n")
    result = materialize_all(settings, instance, "ratings")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "duplicated (user_id, movie_id)" in str(failure.event_specific_data.error)
    assert stored.read_bytes() == before


def test_unknown_dataset_is_a_clear_error(tmp_path, instance):
    result = materialize_all(make_settings(tmp_path, "ml-99z"), instance, "movielens_raw")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not a known dataset" in str(failure.event_specific_data.error)


def test_synthetic_tiny_ingest_in_process(tmp_path, instance):
    """The whole ingest group on a tiny synthetic dataset, in process: counts match the generator's spec."""
    from movielens_assets.core.data.synthetic import parse_synthetic_name

    spec = parse_synthetic_name("synthetic-tiny")
    result = materialize_all(make_settings(tmp_path, "synthetic-tiny"), instance, "group:ingest")
    assert result.success
    mats = _materialized(result)
    assert mats["ratings"]["dagster/row_count"].value == spec.n_ratings
    assert mats["movies"]["dagster/row_count"].value == spec.n_movies
    assert mats["links"]["dagster/row_count"].value == spec.n_movies
    assert mats["tags"]["dagster/row_count"].value > 0
    assert mats["movielens_raw"]["kind"].value == "synthetic"
    assert all(_checks(result).values())


def test_single_table_rules_are_reported_by_the_ingest_without_a_second_scan(tmp_path, instance):
    """unique keys / no NULL ids / the rating domain: check results from the asset body (the ingest verified
    them while writing); only the cross-table rule is a separate asset check."""
    from movielens_assets.definitions import build_definitions

    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    result = materialize_all(settings, instance, "group:ingest")
    evaluations = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    for key in (("ratings", "unique_user_movie"), ("ratings", "rating_domain"), ("ratings", "no_null_ids"),
                ("movies", "unique_movie_id"), ("movies", "no_null_ids"), ("links", "unique_movie_id"),
                ("tags", "no_null_ids"), ("ratings", "positive_ids"), ("movies", "positive_ids"),
                ("tags", "positive_ids"), ("links", "positive_ids"), ("ratings", "rated_movies_exist")):
        assert evaluations[key].passed, key
    ratings_dup = evaluations[("ratings", "unique_user_movie")].metadata
    assert ratings_dup["rule"].value == "unique (user_id, movie_id)" and ratings_dup["violations"].value == 0
    assert "while writing" in ratings_dup["verified"].value
    assert evaluations[("ratings", "rating_domain")].metadata["rule"].value.startswith("rating in")
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    ratings_checks = {k.name for k in graph.get_check_keys_for_assets({dg.AssetKey("ratings")})}
    assert ratings_checks == {"unique_user_movie", "rating_domain", "no_null_ids", "positive_ids",
                              "rated_movies_exist"}
    in_body = {spec.name for spec in defs.resolve_assets_def(dg.AssetKey("ratings")).check_specs}
    assert in_body >= {"unique_user_movie", "rating_domain", "no_null_ids", "positive_ids"}
    assert "rated_movies_exist" not in in_body


def test_ratings_alone_on_a_fresh_lake_says_which_table_to_materialize(tmp_path, instance):
    """The README's one-asset example (`--select ratings` on a fresh data directory): the cross-table check
    cannot read `movies` and says so, naming what to materialize — not a raw DuckDB IO error."""
    from movielens_assets_tests.helpers import materialize

    src = write_movielens_dir(tmp_path / "csv")
    settings = make_settings(tmp_path, str(src))
    assert materialize(settings, instance, "movielens_raw").success
    result = materialize(settings, instance, "ratings")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["unique_user_movie"].passed and checks["rating_domain"].passed
    orphan = checks["rated_movies_exist"]
    assert not orphan.passed
    assert "`movies` not materialized yet" in orphan.description and "--select 'ratings,movies'" in orphan.description
    assert orphan.metadata["missing"].value == ["movies"]
    # with movies materialized the same check passes
    assert materialize(settings, instance, "key:ratings or key:movies").success


def test_a_table_alone_on_a_fresh_lake_says_to_materialize_movielens_raw(tmp_path, instance):
    """`--select ratings` on a fresh data directory of a synthetic (or GroupLens) dataset: the CSV files were
    never generated / downloaded there; the failure names `movielens_raw`, not a missing ratings.csv."""
    from movielens_assets_tests.helpers import failure_messages, materialize

    settings = make_settings(tmp_path, "synthetic-tiny")
    result = materialize(settings, instance, "ratings")
    assert not result.success
    message = "\n".join(failure_messages(result))
    assert "`movielens_raw` was never materialized" in message and "--select 'movielens_raw,ratings'" in message
    assert not (settings.data_dir / "processed" / "ratings.parquet").exists()
