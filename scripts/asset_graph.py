"""Draw the asset graph of the code location: `docs/asset_graph.png` and `docs/asset_graph.json`.

    .venv/bin/python scripts/asset_graph.py            # rewrite both files from the current Definitions
    .venv/bin/python scripts/asset_graph.py --out DIR  # write them elsewhere

The graph is read from `movielens_assets.definitions.defs` (asset keys, groups, dependencies, partitioned or
not). `docs/asset_graph.json` is exactly what the picture shows — nodes, groups, edges, sorted — and the
picture is drawn from it alone, so `movielens_assets_tests/test_asset_graph.py`, which rebuilds the JSON and
compares it with the checked-in one, also tells when the picture is stale.

Layout (no graphviz): layers by longest path from the sources, left to right; an edge that spans several
layers runs through placeholder points in the layers between, so it never crosses a box; the order inside a
layer comes from barycenter sweeps (fewest crossings of a few dozen sweeps is kept); boxes are coloured by
group, partitioned assets get a dashed double border.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
JSON_NAME, PNG_NAME = "asset_graph.json", "asset_graph.png"


# --------------------------------------------------------------------------------------------- the graph
def graph_from_definitions(defs: Any = None) -> dict[str, Any]:
    """{"groups", "nodes", "edges"} of the code location's assets, sorted (deterministic)."""
    if defs is None:
        sys.path.insert(0, str(ROOT))
        from movielens_assets.definitions import defs
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    nodes = [{"key": k.to_user_string(), "group": graph.get(k).group_name,
              "partitioned": bool(graph.get(k).is_partitioned)} for k in keys]
    edges = sorted([p.to_user_string(), k.to_user_string()] for k in keys for p in graph.get(k).parent_keys)
    return {
        "generated_by": "scripts/asset_graph.py (do not edit: run it)",
        "groups": sorted({n["group"] for n in nodes}),
        "nodes": nodes,
        "edges": edges,
    }


def to_json(graph: dict[str, Any]) -> str:
    """The graph as JSON text, one node / edge per line (readable diffs)."""
    lines = ["{"]
    for i, (name, value) in enumerate(graph.items()):
        comma = "," if i < len(graph) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            items = [f"  {json.dumps(v)}" for v in value]
            lines.append(f" {json.dumps(name)}: [\n" + ",\n".join(items) + f"\n ]{comma}")
        else:
            lines.append(f" {json.dumps(name)}: {json.dumps(value)}{comma}")
    return "\n".join(lines + ["}"]) + "\n"


# -------------------------------------------------------------------------------------------- the layout
def layers_by_longest_path(nodes: Sequence[str], edges: Sequence[Sequence[str]]) -> dict[str, int]:
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    layer: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in layer:
            layer[n] = 1 + max((visit(p) for p in parents[n]), default=-1)
        return layer[n]

    for n in nodes:
        visit(n)
    return layer


def group_order(graph: dict[str, Any], layer: dict[str, int]) -> list[str]:
    """The groups in pipeline order: by the mean layer of their assets."""
    def mean_layer(g: str) -> float:
        members = [layer[n["key"]] for n in graph["nodes"] if n["group"] == g]
        return sum(members) / len(members)

    return sorted(graph["groups"], key=lambda g: (mean_layer(g), g))


def _crossings(order: list[list[str]], links: list[tuple[str, str]], pos: dict[str, float]) -> int:
    by_layer: dict[int, list[tuple[float, float]]] = {}
    index = {n: i for i, layer in enumerate(order) for n in layer}
    for a, b in links:
        by_layer.setdefault(index[a], []).append((pos[a], pos[b]))
    count = 0
    for segs in by_layer.values():
        segs.sort()
        for i in range(len(segs)):
            for j in range(i + 1, len(segs)):
                if segs[i][0] != segs[j][0] and segs[j][1] < segs[i][1]:
                    count += 1
    return count


def layout(graph: dict[str, Any], sweeps: int = 40) -> tuple[list[list[str]], dict[str, list[str]]]:
    """Layers (each an ordered list of nodes and `~a~b~i` placeholders) and each edge's route of points."""
    names = [n["key"] for n in graph["nodes"]]
    group = {n["key"]: n["group"] for n in graph["nodes"]}
    layer = layers_by_longest_path(names, graph["edges"])
    group_rank = {g: i for i, g in enumerate(group_order(graph, layer))}
    n_layers = max(layer.values()) + 1
    order: list[list[str]] = [[] for _ in range(n_layers)]
    for n in sorted(names, key=lambda n: (group_rank[group[n]], group[n], n)):
        order[layer[n]].append(n)
    routes: dict[str, list[str]] = {}
    links: list[tuple[str, str]] = []  # consecutive points of the routes: one layer apart
    for a, b in graph["edges"]:
        route = [a] + [f"~{a}~{b}~{i}" for i in range(layer[a] + 1, layer[b])] + [b]
        for i, point in enumerate(route[1:-1], start=layer[a] + 1):
            order[i].append(point)
        routes[f"{a}->{b}"] = route
        links += list(zip(route, route[1:], strict=False))
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in links:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)

    def positions(o: list[list[str]]) -> dict[str, float]:
        return {n: float(i) for layer_nodes in o for i, n in enumerate(layer_nodes)}

    def barycentre(n: str, neighbours: dict[str, list[str]], pos: dict[str, float]) -> tuple[float, float]:
        ns = neighbours.get(n, [])
        return (sum(pos[m] for m in ns) / len(ns) if ns else pos[n], pos[n])

    best = [list(x) for x in order]
    best_count = _crossings(best, links, positions(best))
    for sweep in range(sweeps):
        pos = positions(order)
        rng = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for i in rng:
            order[i].sort(key=lambda n: barycentre(n, neighbours, pos))  # noqa: B023 - used right here
            pos.update({n: float(j) for j, n in enumerate(order[i])})
        count = _crossings(order, links, positions(order))
        if count < best_count:
            best, best_count = [list(x) for x in order], count
    return best, routes


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit of `values` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [m for m, _, n in blocks for _ in range(int(n))]


def vertical_positions(order: list[list[str]], routes: dict[str, list[str]], size: dict[str, float],
                       sweeps: int = 24) -> dict[str, float]:
    """Each point's vertical position (downwards), keeping each layer's order and a gap of half the sizes of
    two neighbours: every sweep moves the points of a layer towards the mean of their neighbours in the layer
    before it (alternately after it), as a weighted isotonic fit (placeholders weigh more: straight long edges)."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for route in routes.values():
        for a, b in zip(route, route[1:], strict=False):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    pos: dict[str, float] = {}
    for layer_nodes in order:
        s = -sum(size[n] for n in layer_nodes) / 2
        for n in layer_nodes:
            pos[n] = s + size[n] / 2
            s += size[n]

    def place(layer_nodes: list[str], neighbours: dict[str, list[str]]) -> None:
        want = [sum(pos[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours.get(n) else pos[n]
                for n in layer_nodes]
        offsets = [0.0]
        for a, b in zip(layer_nodes, layer_nodes[1:], strict=False):
            offsets.append(offsets[-1] + (size[a] + size[b]) / 2)
        weights = [4.0 if n.startswith("~") else 1.0 for n in layer_nodes]
        fitted = _isotonic([w - o for w, o in zip(want, offsets, strict=True)], weights)
        for n, t, o in zip(layer_nodes, fitted, offsets, strict=True):
            pos[n] = t + o

    for sweep in range(sweeps):
        if sweep % 2 == 0:
            for layer_nodes in order[1:]:
                place(layer_nodes, up)
        else:
            for layer_nodes in reversed(order[:-1]):
                place(layer_nodes, down)
    return pos


# ----------------------------------------------------------------------------------------------- drawing
WIDTH_PX = 1800
ROW_PX, PLACEHOLDER_PX, BOX_H_PX = 32, 9, 23
TOP_PX, BOTTOM_PX, SIDE_PX, GAP_PX, PAD_PX = 92, 18, 14, 46, 14
FONT_PT, MIN_FONT_PT = 9.5, 7.0
PALETTE = ["#4C78A8", "#54A24B", "#E45756", "#F58518", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D", "#BAB0AC"]


def draw(graph: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as MplPath
    from matplotlib.textpath import TextPath

    order, routes = layout(graph)
    info = {n["key"]: n for n in graph["nodes"]}
    names = [n["key"] for n in graph["nodes"]]
    layer_of = layers_by_longest_path(names, graph["edges"])
    groups = group_order(graph, layer_of)
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}

    # columns as wide as their longest label; the font shrinks until every column fits the width
    def label_px(text: str, pt: float) -> float:
        return TextPath((0, 0), text, size=pt * 100 / 72, prop={"weight": "bold"}).get_extents().width

    font = FONT_PT
    while True:
        widths = [max((label_px(n, font) for n in layer_nodes if not n.startswith("~")), default=0) + 2 * PAD_PX
                  for layer_nodes in order]
        if sum(widths) + GAP_PX * (len(order) - 1) + 2 * SIDE_PX <= WIDTH_PX or font <= MIN_FONT_PT:
            break
        font -= 0.25
    gap = (WIDTH_PX - 2 * SIDE_PX - sum(widths)) / max(1, len(order) - 1)
    centre_x, x = [], float(SIDE_PX)
    for w in widths:
        centre_x.append(x + w / 2)
        x += w + gap

    size = {n: PLACEHOLDER_PX if n.startswith("~") else ROW_PX for layer_nodes in order for n in layer_nodes}
    pos = vertical_positions(order, routes, size)
    top = min(pos[n] - size[n] / 2 for n in pos)
    bottom = max(pos[n] + size[n] / 2 for n in pos)
    height = int(TOP_PX + BOTTOM_PX + (bottom - top))
    xy = {n: (centre_x[i], height - TOP_PX - (pos[n] - top)) for i, layer_nodes in enumerate(order)
          for n in layer_nodes}
    half = {n: (widths[i] / 2 if not n.startswith("~") else 0.0) for i, layer_nodes in enumerate(order)
            for n in layer_nodes}

    fig = plt.figure(figsize=(WIDTH_PX / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH_PX)
    ax.set_ylim(0, height)
    ax.axis("off")

    # edges: smooth curves through their placeholders, from the source's right side to the target's left side
    for key in sorted(routes):
        route = routes[key]
        points = [xy[n] for n in route]
        points[0] = (points[0][0] + half[route[0]], points[0][1])
        points[-1] = (points[-1][0] - half[route[-1]] - 1, points[-1][1])
        verts, codes = [points[0]], [MplPath.MOVETO]
        for (ax_, ay), (bx, by) in zip(points, points[1:], strict=False):
            dx = (bx - ax_) * 0.5
            verts += [(ax_ + dx, ay), (bx - dx, by), (bx, by)]
            codes += [MplPath.CURVE4] * 3
        ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>,head_length=5,head_width=2.5",
                                     color=colour[info[route[0]]["group"]], alpha=0.5, lw=0.9, zorder=1,
                                     shrinkA=0, shrinkB=0))

    for n in names:
        (x, y), w, node = xy[n], 2 * half[n], info[n]
        face = colour[node["group"]]
        if node["partitioned"]:
            ax.add_patch(FancyBboxPatch((x - w / 2 - 4, y - BOX_H_PX / 2 - 4), w + 8, BOX_H_PX + 8,
                                        boxstyle="round,pad=0,rounding_size=7", fc="white", ec="#333333", lw=1.4,
                                        ls=(0, (3, 2)), zorder=2))
        ax.add_patch(FancyBboxPatch((x - w / 2, y - BOX_H_PX / 2), w, BOX_H_PX,
                                    boxstyle="round,pad=0,rounding_size=5", fc=face, ec="white", lw=1, zorder=3))
        ax.text(x, y, n, ha="center", va="center_baseline", fontsize=font, color="white", fontweight="bold",
                zorder=4)

    parts = sum(1 for n in graph["nodes"] if n["partitioned"])
    ax.text(SIDE_PX, height - 26, "movielens-rec — the asset graph", fontsize=17, fontweight="bold", va="center")
    ax.text(SIDE_PX, height - 52, f"{len(names)} assets, {len(graph['edges'])} dependencies (arrows: data flows "
            "left to right; columns: longest path from the sources) — drawn from movielens_assets.definitions "
            "by scripts/asset_graph.py", fontsize=10.5, color="#444444", va="center")
    handles = [Patch(fc=colour[g], ec="white", label=f"group {g}") for g in groups]
    handles.append(Patch(fc="white", ec="#333333", ls=(0, (3, 2)), lw=1.4,
                         label=f"partitioned: one run per user shard ({parts} asset{'s' * (parts != 1)})"))
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), frameon=False, fontsize=10.5,
               bbox_to_anchor=(1 - SIDE_PX / WIDTH_PX, 1 - 12 / height), handlelength=1.6, columnspacing=1.4)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DOCS, help="output directory (default: docs/)")
    args = parser.parse_args(argv)
    graph = graph_from_definitions()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / JSON_NAME).write_text(to_json(graph), encoding="utf-8")
    draw(graph, args.out / PNG_NAME)
    print(f"wrote {args.out / JSON_NAME} and {args.out / PNG_NAME}: {len(graph['nodes'])} assets, "
          f"{len(graph['edges'])} dependencies, groups {', '.join(graph['groups'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
