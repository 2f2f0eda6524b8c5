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
from pathlib import Path

import dagster as dg

from movielens_assets.settings import load_settings


def _instance() -> dg.DagsterInstance:
    import os

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set: run through `make demo`, or export DAGSTER_HOME=<absolute path>")
    return dg.DagsterInstance.get()


def run(selection: str | None = None) -> dg.ExecuteInProcessResult:
    from movielens_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    if selection:
        job = job.get_subset(asset_selection=set(dg.AssetSelection.from_string(selection).resolve(
            defs.resolve_asset_graph())))
    # INFO, not DEBUG: asset logs (counts, rates) without every engine event.
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    return job.execute_in_process(run_config=run_config, instance=_instance(), raise_on_error=False)


def recall_table(report: dict) -> str:
    """The headline of `metrics/recall.json` as a plain-text table: every channel under every protocol."""
    head = f"{'protocol':<12} {'channel':<18} {'users':>6} {'Recall@20':>9} {'NDCG@20':>8} {'Recall@100':>10}  95% CI @100"
    lines = [head, "-" * len(head)]
    for protocol, body in report["protocols"].items():
        for channel, m in body["channels"].items():
            lo, hi = m["recall@100_ci"]
            lines.append(f"{protocol:<12} {channel:<18} {m['users']:>6} {m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f} "
                         f"{m['recall@100']:>10.4f}  [{lo:.4f}, {hi:.4f}]")
    return "\n".join(lines)


def summary(result: dg.ExecuteInProcessResult) -> str:
    settings = load_settings()
    lines = ["", "=" * 72, f"movielens-rec demo — dataset {settings.dataset}", f"data lake: {settings.data_dir}", ""]
    mats = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    width = max((len(m.asset_key.to_user_string()) for m in mats), default=0)
    for mat in mats:
        rows = mat.metadata.get("dagster/row_count")
        path = mat.metadata.get("path")
        row_txt = f"{rows.value:>12,} rows" if rows is not None else " " * 17
        lines.append(f"  {mat.asset_key.to_user_string():<{width}} {row_txt}  {path.value if path is not None else ''}")
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    lines.append("")
    lines.append(f"asset checks: {len(checks) - len(failed)}/{len(checks)} passed")
    lines.extend(f"  FAILED {c.asset_key.to_user_string()}:{c.check_name}" for c in failed)
    report = settings.data_dir / "reports" / "EDA_REPORT.md"
    if report.exists():
        lines.append(f"EDA report: {report}")
    metrics = settings.data_dir / "metrics" / "recall.json"
    if any(m.asset_key.to_user_string() == "recall_metrics" for m in mats) and metrics.exists():
        lines += ["", f"recall metrics ({metrics}; protocols in docs/EVALUATION.md):",
                  recall_table(json.loads(metrics.read_text()))]
    lines.append("Open the UI with `make ui` (http://127.0.0.1:3000) to browse runs, metadata and lineage.")
    lines.append("=" * 72)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--select", help="asset selection (e.g. 'group:ingest', 'ratings+'); default: all")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.select)
    print(summary(result))
    print(f"finished in {time.perf_counter() - start:.1f}s — {'SUCCESS' if result.success else 'FAILED'}")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
