"""Helpers shared by test modules (imported explicitly; fixtures stay in conftest.py, which test modules
request by argument, never import)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from movielens_assets.definitions import build_definitions
from movielens_assets.settings import Settings, load_settings

RATINGS_CSV = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,978300760\n1,2,3.5,978302109\n1,3,5.0,978301968\n"
    "2,1,2.0,978298413\n2,3,4.5,978299000\n"
    "3,2,1.0,978220179\n3,4,0.5,978199279\n3,1,3.0,978199000\n"
)
MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
    "3,Heat (1995),Action|Crime|Thriller\n"
    "4,Unknown Film,(no genres listed)\n"
)
TAGS_CSV = "userId,movieId,tag,timestamp\n1,1,pixar,978300761\n2,3,\"heist, classic\",978299001\n"
LINKS_CSV = "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113228,15602\n3,0113277,949\n4,1234567,\n"

#: A fast two-tower for the tests (the asset's defaults are sized for synthetic-small).
FAST_TWO_TOWER = {"epochs": 1, "dim": 16, "hidden": 32, "history_len": 10, "batch_size": 512}
#: A one-epoch ranker on a small budget (+ the ablations `ranking_metrics` reports).
TINY_RANKER = {"epochs": 1, "max_rows_per_epoch": 20_000, "num_workers": 0, "embed_dim": 8,
               "ablations": ["full_same_budget", "no_recall_features"], "ablation_epochs": 1}


def write_movielens_dir(root: Path, *, tags: bool = True, links: bool = True, **overrides: str) -> Path:
    """A directory dataset in MovieLens CSV format; `overrides` replace a file's text by name."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"ratings": RATINGS_CSV, "movies": MOVIES_CSV}
    if tags:
        files["tags"] = TAGS_CSV
    if links:
        files["links"] = LINKS_CSV
    files.update(overrides)
    for name, text in files.items():
        (root / f"{name}.csv").write_text(text, encoding="utf-8")
    return root


def make_settings(tmp_path: Path, dataset: str, **env: str) -> Settings:
    """Settings for `dataset` with the lake under `tmp_path / "lake"` and `env` overriding variables."""
    return load_settings({"MOVIELENS_DATA_DIR": str(tmp_path / "lake"), "MOVIELENS_DATASET": dataset, **env})


def materialize(settings: Settings, instance: dg.DagsterInstance, selection: str, run_config: dict | None = None,
                partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    """The implicit asset job (assets + checks) for `selection`, in process, with `run_config` (and a partition
    of the partitioned assets in it), not raising."""
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    return job.get_subset(asset_selection=set(keys)).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config or {}, partition_key=partition_key)


def build_full_lake(tmp_path: Path, model_dir: Path, shards: int = 3) -> Settings:
    """Every asset on synthetic-tiny (the ranking shards one partition run each), fast configs: the lake serving
    reads. Fails the calling test with the failures of the first run that fails."""
    settings = make_settings(tmp_path, "synthetic-tiny", EMBEDDING_MODEL=str(model_dir), MOVIELENS_DEVICE="cpu",
                             MOVIELENS_RANKING_SHARDS=str(shards))
    config = {"ops": {"two_tower_recall": {"config": FAST_TWO_TOWER},
                      "unified_ranker": {"config": {**TINY_RANKER, "ablations": []}}}}
    with dg.instance_for_test() as instance:
        steps = [("group:ingest or group:tmdb or group:features or group:recall or key:user_sequences or "
                  "key:item_profile or key:user_profile", None)]
        steps += [("key:ranking_samples", f"{i:02d}") for i in range(shards)]
        steps += [("key:unified_ranker or key:ranked_recommendations", None)]
        for selection, partition in steps:
            result = materialize(settings, instance, selection, config, partition_key=partition)
            assert result.success, (selection, partition, failure_messages(result))
    return settings


def materialize_all(settings: Settings, instance: dg.DagsterInstance, selection: str = "*"
                    ) -> dg.ExecuteInProcessResult:
    """Run the implicit asset job (assets + checks) for `selection`, in process, without raising."""
    return materialize(settings, instance, selection)


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.message or "" for e in result.all_events if e.is_failure] + [
        e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
