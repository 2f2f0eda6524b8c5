"""docs/asset_graph.json (and the picture drawn from it, docs/asset_graph.png) match the current Definitions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "asset_graph.py"


def _script():
    spec = importlib.util.spec_from_file_location("asset_graph_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_asset_graph_is_current():
    from movielens_assets.definitions import defs

    script = _script()
    current = script.to_json(script.graph_from_definitions(defs))
    checked_in = (ROOT / "docs" / script.JSON_NAME).read_text(encoding="utf-8")
    assert current == checked_in, (
        "docs/asset_graph.json (and docs/asset_graph.png) no longer match the asset graph of "
        "movielens_assets.definitions: run `.venv/bin/python scripts/asset_graph.py` and commit both files")
    assert (ROOT / "docs" / script.PNG_NAME).stat().st_size > 10_000


def test_graph_json_shape_and_layout(tmp_path):
    script = _script()
    graph = json.loads((ROOT / "docs" / script.JSON_NAME).read_text(encoding="utf-8"))
    keys = [n["key"] for n in graph["nodes"]]
    assert keys == sorted(keys) and graph["edges"] == sorted(graph["edges"])
    assert {n["group"] for n in graph["nodes"]} == set(graph["groups"])
    assert all(a in keys and b in keys for a, b in graph["edges"])
    assert [n["key"] for n in graph["nodes"] if n["partitioned"]] == ["ranking_samples"]
    layer = script.layers_by_longest_path(keys, graph["edges"])
    assert layer["movielens_raw"] == 0 and all(layer[a] < layer[b] for a, b in graph["edges"])
    order, routes = script.layout(graph)
    assert sorted(n for x in order for n in x if not n.startswith("~")) == keys
    assert all(len(route) == layer[route[-1]] - layer[route[0]] + 1 for route in routes.values())
    script.draw(graph, tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
