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
