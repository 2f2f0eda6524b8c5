"""Checks of the ranking group read from the files (the shard checks run inside `ranking_samples`, per
partition, and the checkpoint's inside `unified_ranker`: their assets already hold the answer)."""

import json

import dagster as dg

from movielens_assets.assets import ranking as ranking_assets
from movielens_assets.resources import DataLake


@dg.asset_check(asset=ranking_assets.ranking_metrics, blocking=True,
                description="metrics/ranking.json parses and holds every documented key (AUC / GAUC / logloss per "
                            "task, final / recall-only / every channel's HR, Recall, NDCG @ 10, 20, 50, ablations); "
                            "metrics/ranking.md is there")
def ranking_metrics_complete(lake: DataLake) -> dg.AssetCheckResult:
    from movielens_assets.core.ranking.report import missing_keys

    path = lake.metrics_dir / "ranking.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return dg.AssetCheckResult(passed=False, metadata={"error": f"{path}: {exc}"})
    missing = missing_keys(report)
    md = (lake.metrics_dir / "ranking.md").is_file()
    return dg.AssetCheckResult(passed=not missing and md, metadata={
        "missing_keys": dg.MetadataValue.json(missing[:50]), "markdown_present": md,
        "channels": dg.MetadataValue.json(sorted(report.get("channels", {}))),
        "ablations": dg.MetadataValue.json(sorted(report.get("ablations", {})))})


ranking_checks = [ranking_metrics_complete]
