"""`make demo`: materialize every asset (and run every check) of the code location on the configured
dataset, recording the runs in the persistent Dagster instance (`DAGSTER_HOME`) so they show in the UI,
then print where the outputs are and a short summary.

    python -m movielens_assets.demo            # everything
    python -m movielens_assets.demo --select 'group:ingest'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import cast

import dagster as dg
import numpy as np

from movielens_assets.settings import load_settings


def _instance() -> dg.DagsterInstance:
    import os

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set: run through `make demo`, or export DAGSTER_HOME=<absolute path>")
    return dg.DagsterInstance.get()


# INFO, not DEBUG: asset logs (counts, rates) without every engine event.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class PartitionRun:
    """What a partition's run reports back to the parent process (runs execute in worker processes)."""

    asset: str
    partition: str
    success: bool
    rows: int | None
    path: str | None
    checks: list[tuple[str, bool]]


def _run_partition(asset: str, partition: str) -> PartitionRun:
    """One run of `asset` for one partition (in a worker process), recorded in the persistent instance."""
    from movielens_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey(asset)})
    result = job.execute_in_process(run_config=RUN_CONFIG, instance=_instance(), partition_key=partition,
                                    raise_on_error=False)
    mats = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    # dagster types `.value` as any metadata value; dagster/row_count holds an int
    rows = sum(int(cast(int, m.metadata["dagster/row_count"].value)) for m in mats
               if "dagster/row_count" in m.metadata)
    path = next((str(m.metadata["path"].value) for m in mats if "path" in m.metadata), None)
    return PartitionRun(asset, partition, result.success, rows if mats else None, path,
                        [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()])


@dataclass
class DemoResult:
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    partitions: list[PartitionRun] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs) and all(p.success for p in self.partitions)


def resolve_selection(selection: str | None, graph: dg.AssetGraph) -> set[dg.AssetKey]:
    """The assets of `selection`, comma-separated as for `dagster asset materialize --select` (each part in the
    legacy `a*` / `+a` syntax or the new one); None = every asset."""
    chosen = dg.AssetSelection.from_coercible(selection.split(",")) if selection else dg.AssetSelection.all()
    return set(chosen.resolve(graph))


def run(selection: str | None = None, workers: int = 2, ops_config: dict | None = None) -> DemoResult:
    """Materialize `selection` (default: everything): the unpartitioned assets upstream of the partitioned
    ones in one run, then every partition of each partitioned asset as its own run (`workers` processes in
    parallel, as a backfill would), then what depends on them in one run. `ops_config` (`{"<asset>": {"config":
    {...}}}`) configures the unpartitioned assets, as the UI's launchpad would."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from movielens_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    selected = resolve_selection(selection, graph)
    partitioned = {k for k in selected if graph.get(k).is_partitioned}
    after = dg.AssetSelection.assets(*partitioned).downstream(include_self=False).resolve(graph) & selected \
        if partitioned else set()
    before = selected - partitioned - after
    job = defs.resolve_implicit_global_asset_job_def()
    out = DemoResult()

    def unpartitioned(keys: AbstractSet[dg.AssetKey]) -> bool:
        if keys:
            out.runs.append(job.get_subset(asset_selection=keys).execute_in_process(
                run_config={**RUN_CONFIG, "ops": {name: v for name, v in (ops_config or {}).items()
                                                  if dg.AssetKey(name) in keys}},
                instance=_instance(), raise_on_error=False))
        return out.success

    if not unpartitioned(before):
        return out
    for key in sorted(partitioned, key=lambda k: k.to_user_string()):
        partitions_def = graph.get(key).partitions_def
        assert partitions_def is not None  # `partitioned` holds partitioned assets only
        partitions = partitions_def.get_partition_keys()
        print(f"{key.to_user_string()}: {len(partitions)} partitions, {workers} at a time", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=get_context("spawn")) as pool:
            out.partitions += list(pool.map(_run_partition, [key.to_user_string()] * len(partitions), partitions))
    if out.success:
        unpartitioned(after)
    return out


def recall_table(report: dict) -> str:
    """The headline of `metrics/recall.json` as a plain-text table: every channel under every protocol."""
    head = (f"{'protocol':<12} {'channel':<18} {'users':>6} {'Recall@20':>9} {'NDCG@20':>8} {'Recall@100':>10}"
            "  95% CI @100")
    lines = [head, "-" * len(head)]
    for protocol, body in report["protocols"].items():
        for channel, m in body["channels"].items():
            lo, hi = m["recall@100_ci"]
            lines.append(f"{protocol:<12} {channel:<18} {m['users']:>6} {m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f} "
                         f"{m['recall@100']:>10.4f}  [{lo:.4f}, {hi:.4f}]")
    return "\n".join(lines)


def ranking_table(report: dict) -> str:
    """The headline of `metrics/ranking.json`: the re-ranked list vs the recall-only order vs every channel
    (95% interval of NDCG@20), then GAUC per task."""
    head = f"{'list':<22} {'Recall@20':>9} {'NDCG@20':>8}  95% CI NDCG@20      {'HR@20':>6} {'NDCG@50':>8}"
    lines = [head, "-" * len(head)]
    rows = [("final (ranker)", report["final_ci"]), ("recall-only (merged)", report["recall_only_ci"]),
            *report["channels_ci"].items()]
    for name, m in rows:
        lo, hi = m["ndcg@20_ci"]
        lines.append(f"{name:<22} {m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f}  [{lo:.4f}, {hi:.4f}]  "
                     f"{m['hr@20']:>6.4f} {m['ndcg@50']:>8.4f}")
    gauc = report["gauc"]
    lines.append(f"GAUC watch {gauc['watch']:.4f}, like {gauc['like']:.4f}, like among watched "
                 f"{gauc['like_watched']:.4f} ({report['users']:,} test users, their merged top-200 re-ranked)")
    return "\n".join(lines)


def serving_examples(data_dir, dataset: str) -> list[str]:
    """Real recommendations, as `movielens-rec recommend` prints them, for the heaviest and the lightest evaluated
    user, after their latest ratings (docs/SERVING.md)."""
    from movielens_assets.cli import format_history, format_recommend
    from movielens_assets.core.serving.artifacts import ServingError
    from movielens_assets.core.serving.recommender import Recommender

    try:
        rec = Recommender.load(data_dir, dataset)
    except ServingError as exc:
        return [f"recommendations: not available ({exc})"]
    users = rec.users_with_lists
    counts = rec.rating_counts(users)
    lines = ["recommendations (`movielens-rec recommend --user ID`, `movielens-rec serve`; docs/SERVING.md):"]
    for label, user in (("heavy", users[int(np.argmax(counts))]), ("light", users[int(np.argmin(counts))])):
        lines += ["", f"[{label} user]", format_history(rec.history(int(user), 3)),
                  format_recommend(rec.recommend(int(user), 5))]
    return lines


def summary(result: DemoResult) -> str:
    settings = load_settings()
    lines = ["", "=" * 72, f"movielens-rec demo — dataset {settings.dataset}", f"data lake: {settings.data_dir}", ""]
    mats = [e.step_materialization_data.materialization for r in result.runs
            for e in r.get_asset_materialization_events()]
    names = [m.asset_key.to_user_string() for m in mats] + [p.asset for p in result.partitions]
    width = max((len(n) for n in names), default=0)
    for mat in mats:
        rows = mat.metadata.get("dagster/row_count")
        path = mat.metadata.get("path")
        row_txt = f"{rows.value:>12,} rows" if rows is not None else " " * 17
        lines.append(f"  {mat.asset_key.to_user_string():<{width}} {row_txt}  {path.value if path is not None else ''}")
    by_asset: dict[str, list[PartitionRun]] = {}
    for p in result.partitions:
        by_asset.setdefault(p.asset, []).append(p)
    for asset, runs in by_asset.items():
        ok = sum(r.success for r in runs)
        n_rows = sum(r.rows or 0 for r in runs)
        lines.append(f"  {asset:<{width}} {n_rows:>12,} rows  {len(runs)} partitions ({ok} succeeded)"
                     + (f", e.g. {runs[0].path}" if runs[0].path else ""))
    checks = [(c.asset_key.to_user_string(), c.check_name, c.passed) for r in result.runs
              for c in r.get_asset_check_evaluations()]
    checks += [(f"{p.asset}[{p.partition}]", name, passed) for p in result.partitions for name, passed in p.checks]
    failed = [c for c in checks if not c[2]]
    lines.append("")
    lines.append(f"asset checks: {len(checks) - len(failed)}/{len(checks)} passed")
    lines.extend(f"  FAILED {asset}:{name}" for asset, name, _ in failed)
    lines.extend(f"  FAILED run of {p.asset}[{p.partition}]" for p in result.partitions if not p.success)
    report = settings.data_dir / "reports" / "EDA_REPORT.md"
    if report.exists():
        lines.append(f"EDA report: {report}")
    metrics = settings.data_dir / "metrics" / "recall.json"
    if any(m.asset_key.to_user_string() == "recall_metrics" for m in mats) and metrics.exists():
        lines += ["", f"recall metrics ({metrics}; protocols in docs/EVALUATION.md):",
                  recall_table(json.loads(metrics.read_text()))]
    ranking = settings.data_dir / "metrics" / "ranking.json"
    if any(m.asset_key.to_user_string() == "ranking_metrics" for m in mats) and ranking.exists():
        lines += ["", f"ranking metrics ({ranking}; docs/EVALUATION.md, \"Ranking\"):",
                  ranking_table(json.loads(ranking.read_text()))]
    if any(m.asset_key.to_user_string() == "ranked_recommendations" for m in mats):
        lines += ["", *serving_examples(settings.data_dir, settings.dataset)]
    lines.append("Open the UI with `make ui` (http://127.0.0.1:3000) to browse runs, metadata and lineage.")
    lines.append("=" * 72)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--select", help="asset selection as for `dagster asset materialize --select` (e.g. "
                                         "'group:ingest', 'ratings+', 'group:ingest,group:tmdb'); default: all")
    parser.add_argument("--workers", type=int, default=2,
                        help="partitions (ranking shards) materialized in parallel, one process each (default 2)")
    parser.add_argument("--config", type=json.loads, default={},
                        help='run config of assets as JSON, e.g. \'{"unified_ranker": {"config": {"ablations": []}}}\'')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.select, args.workers, args.config)
    print(summary(result))
    print(f"finished in {time.perf_counter() - start:.1f}s — {'SUCCESS' if result.success else 'FAILED'}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
