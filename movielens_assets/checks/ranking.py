"""Checks of the ranking group read from the files (the shard checks run inside `ranking_samples`, per
partition, and the checkpoint's reproduction check inside `unified_ranker`: their assets already hold the answer).

- `ranking_metrics`: `ranking_metrics_complete` — metrics/ranking.json holds every documented key.
- `unified_ranker`: `finite_parameters_and_training_log` — the full model and every ablation trained beside it:
  finite weights and item tables, a non-empty training log with finite losses; the full model's curve plotted.
- `ranked_recommendations`: `valid_recommendation_lists` — `ranked.parquet` and `scored_candidates.parquet`:
  non-empty, the expected columns, no movie of the user's train split, only test users, probabilities finite
  and in [0, 1], ranks 1..n per user ordered by p_watch (`core.evaluation.list_checks`).
All blocking: a NaN model or a broken list would flow into the recommendations and the metrics.
"""

import json
from typing import Any

import dagster as dg

from movielens_assets.assets import ranking as ranking_assets
from movielens_assets.assets import recall as recall_assets
from movielens_assets.checks._lists import list_check_result
from movielens_assets.core.evaluation.list_checks import RECOMMENDATIONS, check_list_file
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


@dg.asset_check(asset=ranking_assets.unified_ranker, blocking=True,
                description="The full model (`<data>/models/ranking/<protocol>/unified_ranker/`) and every ablation "
                            "trained with it: every weight and item table finite, a non-empty training log "
                            "(meta.json) with a finite loss per epoch; the full model's training_curve.png written.")
def finite_parameters_and_training_log(lake: DataLake) -> dg.AssetCheckResult:
    from movielens_assets.core.ranking.health import checkpoint_health

    results: dict[str, dict[str, Any]] = {}
    for protocol in ranking_assets.RANKING_PROTOCOLS:
        full = ranking_assets.ranker_dir(lake, protocol)
        try:
            ablations = json.loads((full / "meta.json").read_text()).get("ablations", [])
        except (OSError, ValueError):
            ablations = []
        for name in ("unified_ranker", *ablations):
            health = checkpoint_health(ranking_assets.ranker_dir(lake, protocol, name))
            if name == "unified_ranker":
                png = full / "training_curve.png"
                if not (png.is_file() and png.stat().st_size > 0):
                    health["passed"] = False
                    health["problems"].append(f"no training curve plot ({png})")
            results[f"{name} {protocol}"] = health
    failed = {k: v for k, v in results.items() if not v["passed"]}
    summary = " | ".join(f"{k}: {'; '.join(v['problems'])}" for k, v in failed.items())
    return dg.AssetCheckResult(
        passed=not failed, description=summary or None,
        metadata={"models": len(results), "failed_models": len(failed),
                  "parameters": sum(v["parameters"] for v in results.values()),
                  "summary": summary or f"all {len(results)} checkpoints pass",
                  "results": dg.MetadataValue.json(results)})


@dg.asset_check(asset=ranking_assets.ranked_recommendations, blocking=True,
                description="`<data>/ranking/recommendations/<protocol>/{ranked,scored_candidates}.parquet`: "
                            "non-empty; user_id, movie_id, rank, merged_rank INTEGER, channels VARCHAR[], p_<task> "
                            "FLOAT; no movie of the user's train split; only the protocol's test users; no duplicate; "
                            "every p_<task> finite and in [0, 1]; ranks 1..n per user, p_watch never increasing "
                            "along them.")
def valid_recommendation_lists(lake: DataLake) -> dg.AssetCheckResult:
    reports = []
    with lake.duckdb() as con:
        for protocol in ranking_assets.RANKING_PROTOCOLS:
            test = recall_assets.stages(lake, protocol)[0]
            for name in ("ranked", "scored_candidates"):
                path = ranking_assets.recommendations_dir(lake, protocol) / f"{name}.parquet"
                reports.append(check_list_file(con, path, RECOMMENDATIONS, train=test.fit_dir / "train.parquet",
                                               users=test.fit_dir / f"{test.target}.parquet",
                                               label=f"{name} {protocol}"))
    return list_check_result(reports)


ranking_checks = [ranking_metrics_complete, finite_parameters_and_training_log, valid_recommendation_lists]
