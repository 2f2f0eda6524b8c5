"""The executor of the code location's jobs, chosen by `MOVIELENS_EXECUTOR` (settings.py).

- `multiprocess` (default): Dagster's own default executor, unchanged — a process per step on the machine the run
  is on (`make ui`, the CLI; `make demo` and the tests run in process and ignore it).
- `k8s`: every step is its own Kubernetes Job through dagster-k8s's `k8s_job_executor` (docs/SCALING.md;
  deploy/k8s/values.yaml sets it on the cluster's code server). Each step pod's size comes from its
  `dagster-k8s/config` op tag (assets/_compute.py), on top of `K8S_EXECUTOR_CONFIG` here and the run launcher's
  config (namespace, image, volumes, secrets: deploy/k8s/dagster.yaml). dagster-k8s (the `cluster` extra) is
  imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # dagster is not imported to read the settings (settings.py validates MOVIELENS_EXECUTOR here)
    import dagster as dg

EXECUTORS = ("multiprocess", "k8s")

K8S_EXECUTOR_CONFIG: dict[str, Any] = {
    # step pods at once within one run (across runs: the run queue and the `gpu` pool of the instance)
    "max_concurrent": 16,
    # a step without its own size in assets/_compute.py: a small pod
    "step_k8s_config": {"container_config": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                           "limits": {"memory": "2Gi"}}}},
    "labels": {"app.kubernetes.io/part-of": "movielens-rec"},
}
"""`k8s_job_executor`'s config (validated against its schema by test_k8s_config.py)."""


def build_executor(name: str) -> dg.ExecutorDefinition | None:
    """The executor for `MOVIELENS_EXECUTOR=name`; None = Dagster's default."""
    if name == "multiprocess":
        return None
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:  # pragma: no cover - the cluster image installs the extra
            raise RuntimeError("MOVIELENS_EXECUTOR=k8s needs dagster-k8s: pip install 'movielens-rec[cluster]'"
                               ) from exc
        return k8s_job_executor.configured(K8S_EXECUTOR_CONFIG, name="k8s_job_executor")
    raise ValueError(f"unknown executor {name!r}: one of {', '.join(EXECUTORS)}")
