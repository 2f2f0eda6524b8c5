"""Helpers shared by test modules (imported explicitly; fixtures stay in conftest.py)."""

from __future__ import annotations

import dagster as dg

from movielens_assets.definitions import build_definitions
from movielens_assets.settings import Settings

#: A fast two-tower for the tests (the asset's defaults are sized for synthetic-small).
FAST_TWO_TOWER = {"epochs": 1, "dim": 16, "hidden": 32, "history_len": 10, "batch_size": 512}


def materialize(settings: Settings, instance: dg.DagsterInstance, selection: str, run_config: dict | None = None,
                partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    """The implicit asset job (assets + checks) for `selection`, in process, with `run_config` (and a partition
    of the partitioned assets in it), not raising."""
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    return job.get_subset(asset_selection=set(keys)).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config or {}, partition_key=partition_key)


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.message or "" for e in result.all_events if e.is_failure] + [
        e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
