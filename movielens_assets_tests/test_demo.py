"""`python -m movielens_assets.demo --select`: the selection syntax of `dagster asset materialize --select`."""

from __future__ import annotations

import dagster as dg

from movielens_assets.definitions import defs
from movielens_assets.demo import resolve_selection


def test_demo_selection_is_comma_separated_like_the_cli():
    graph = defs.resolve_asset_graph()
    ingest, tmdb = resolve_selection("group:ingest", graph), resolve_selection("group:tmdb", graph)
    assert dg.AssetKey("ratings") in ingest and dg.AssetKey("tmdb_movie") in tmdb
    assert resolve_selection("group:ingest,group:tmdb", graph) == ingest | tmdb
    assert resolve_selection("group:ingest or group:tmdb", graph) == ingest | tmdb  # the new syntax
    assert resolve_selection("ratings*", graph) >= {dg.AssetKey("ranking_samples"), dg.AssetKey("splits")}
    assert resolve_selection(None, graph) == set(graph.get_all_asset_keys())
