"""The code location loads, is complete, and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from movielens_assets import definitions


def test_validate_loadable():
    dg.Definitions.validate_loadable(definitions.defs)


def test_ingest_group_assets_and_blocking_checks():
    graph = definitions.defs.resolve_asset_graph()
    ingest = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingest"}
    assert ingest == {"movielens_raw", "ratings", "movies", "tags", "links", "eda_report"}
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert {("ratings", "unique_user_movie"), ("ratings", "rating_domain"), ("ratings", "no_null_ids"),
            ("ratings", "rated_movies_exist"), ("movies", "unique_movie_id"), ("links", "unique_movie_id"),
            ("movies", "no_null_ids")} <= checks


def test_code_location_import_is_light():
    """Heavy libraries are imported inside functions, never when the code location loads."""
    code = (
        "import sys, movielens_assets.definitions; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'matplotlib', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_tmdb_group_assets_checks_resource_job_and_schedule():
    from movielens_assets.core.tmdb.star import STAR_TABLES

    graph = definitions.defs.resolve_asset_graph()
    tmdb = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "tmdb"}
    assert tmdb == {"tmdb_raw", *STAR_TABLES}
    assert {"tmdb_movie", "tmdb_person", "tmdb_genre", "tmdb_cast", "tmdb_crew", "movie_tmdb"} <= tmdb
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("tmdb_raw")).parent_keys} == {"links", "movielens_raw"}
    assert dg.AssetKey("tmdb_raw") in graph.get(dg.AssetKey("tmdb_cast")).parent_keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    for table in STAR_TABLES:
        assert {(table, "primary_key_unique"), (table, "schema_matches")} <= checks
    assert {("tmdb_cast", "foreign_keys_resolve"), ("movie_tmdb", "coverage"), ("movie_tmdb", "consistency")} <= checks
    assert graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("tmdb_cast"), "foreign_keys_resolve")).blocking
    assert "tmdb" in definitions.defs.resources

    schedule = definitions.defs.resolve_schedule_def("tmdb_refresh_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "tmdb_refresh_job" and schedule.execution_timezone == "UTC"
    from movielens_assets.settings import load_settings

    assert schedule.cron_schedule == load_settings().tmdb_refresh_cron  # TMDB_REFRESH_CRON, default daily 09:00
    job = definitions.defs.resolve_job_def("tmdb_refresh_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == tmdb


def test_features_group_assets_blocking_checks_and_resources():
    graph = definitions.defs.resolve_asset_graph()
    features = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "features"}
    assert {"item_text", "item_embeddings"} <= features
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("item_text")).parent_keys}
    assert {"movies", "tags", "tmdb_movie", "movie_tmdb", "tmdb_cast", "tmdb_crew", "tmdb_movie_keyword"} <= parents
    assert "item_text" in {k.to_user_string() for k in graph.get(dg.AssetKey("item_embeddings")).parent_keys}
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    expected = {("item_text", "one_text_per_movie"), ("item_embeddings", "dimension_matches_model"),
                ("item_embeddings", "no_nan"), ("item_embeddings", "unit_norm"), ("item_embeddings", "coverage")}
    assert expected <= checks
    for asset, name in expected:
        assert graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(asset), name)).blocking
    assert {"embedder", "torch_device"} <= set(definitions.defs.resources)


def test_every_asset_says_what_it_is_where_its_files_live_who_owns_it_and_its_tags():
    """A newcomer reads, on every asset: a description naming its file(s) in the lake (`<data>/…`), an owner
    (a team) and the `stage` / `artifact` tags — which the asset selection syntax can filter on."""
    from typing import get_args

    from movielens_assets.assets._catalog import OWNERS, Artifact, Stage

    graph = definitions.defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert len(keys) > 30
    for key in keys:
        node = graph.get(key)
        name = key.to_user_string()
        assert node.description and len(node.description) > 40, name
        assert "`<data>/" in node.description, (name, node.description)
        assert node.owners == OWNERS, name
        assert node.tags.get("stage") in get_args(Stage) and node.tags.get("artifact") in get_args(Artifact), name
    assert OWNERS == ["team:recsys"]
    models = dg.AssetSelection.from_string("tag:artifact=model").resolve(graph)
    assert {k.to_user_string() for k in models} == {"unified_ranker"}
    evaluation = dg.AssetSelection.from_string("tag:stage=evaluation").resolve(graph)
    assert {k.to_user_string() for k in evaluation} == {"recall_metrics", "ranking_metrics", "ranking_eda"}
    assert dg.AssetSelection.from_string('owner:"team:recsys"').resolve(graph) == keys
