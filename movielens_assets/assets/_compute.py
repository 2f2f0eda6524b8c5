"""Where the heavy steps run, in one place: their concurrency pool and the size of their Kubernetes pod
(docs/SCALING.md). Applied where each asset is defined: `@dg.asset(..., **compute("two_tower_recall"))`.

- `pool="gpu"`: the torch training and embedding steps (`item_embeddings`, `two_tower_recall`, `unified_ranker`)
  share one Dagster concurrency pool. The cluster's instance (deploy/k8s/dagster.yaml) gives every pool one slot by
  default (one GPU; `dagster instance concurrency set gpu N` for N), so a GPU step waits for a slot before its pod is
  created instead of a pod waiting for a GPU. Locally no pool has a limit (config/dagster.yaml sets none): nothing
  changes for `make demo`, `make ui` or the tests.
- `op_tags={"dagster-k8s/config": …}`: read only by dagster-k8s, when every step is its own Kubernetes Job
  (`MOVIELENS_EXECUTOR=k8s`, movielens_assets/executors.py). Requests from the peaks measured at the ML-32M shape in
  docs/BENCHMARKS.md, with headroom; the memory limit equals the request (memory is not compressible: a pod over it
  is killed, better at a known size than by the node). Each sized pod's settings follow its size: DuckDB gets the
  pod's cores and 3/4 of its memory (`MOVIELENS_DUCKDB_THREADS`, `MOVIELENS_DUCKDB_MEMORY_LIMIT`: DuckDB would
  otherwise size itself from the node), and a GPU step runs with `MOVIELENS_DEVICE=cuda` (it fails rather than
  silently training on the CPU of a node without a GPU). Steps not listed take the executor's small default pod.

Keys are step (op) names: an asset's name, or the multi-asset's (`ratings`, `tmdb_star`).
`ranked_recommendations` uses torch but scores on the CPU (one worker process per core): a CPU pod, no GPU pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GPU_POOL = "gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Compute:
    cpu: int
    """Cores requested (no CPU limit: a busy node slows a step down instead of throttling it)."""
    memory_gib: int
    """Memory requested and its limit, GiB."""
    gpu: int = 0
    """GPUs (`nvidia.com/gpu`); > 0 also puts the step in the `gpu` pool."""

    @property
    def pool(self) -> str | None:
        return GPU_POOL if self.gpu else None

    def k8s_config(self) -> dict[str, Any]:
        """The `dagster-k8s/config` tag: container resources and settings, and the GPU nodes' toleration."""
        memory = f"{self.memory_gib}Gi"
        limits: dict[str, Any] = {"memory": memory}
        env = [{"name": "MOVIELENS_DUCKDB_THREADS", "value": str(self.cpu)},
               {"name": "MOVIELENS_DUCKDB_MEMORY_LIMIT", "value": f"{self.memory_gib * 768}MB"}]
        config: dict[str, Any] = {"container_config": {
            "resources": {"requests": {"cpu": str(self.cpu), "memory": memory}, "limits": limits}, "env": env}}
        if self.gpu:
            limits[GPU_RESOURCE] = str(self.gpu)
            env.append({"name": "MOVIELENS_DEVICE", "value": "cuda"})
            config["pod_spec_config"] = {"tolerations": [
                {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]}
        return config


COMPUTE: dict[str, Compute] = {
    # ingest: the sort of 32M ratings is bounded at 1.4 GB (BENCHMARKS "Ingest"); the EDA reads the whole table
    "ratings": Compute(cpu=2, memory_gib=4),
    "movies": Compute(cpu=1, memory_gib=2),
    "tags": Compute(cpu=1, memory_gib=2),
    "links": Compute(cpu=1, memory_gib=2),
    "eda_report": Compute(cpu=2, memory_gib=4),
    "tmdb_star": Compute(cpu=2, memory_gib=4),
    # features: the text model on a GPU (87k texts: ~29 min on 2 CPU cores)
    "item_embeddings": Compute(cpu=4, memory_gib=8, gpu=1),
    # recall: every channel loads a stage of 31M rows (~2 GB peak, BENCHMARKS "The window stage at 32M")
    "splits": Compute(cpu=2, memory_gib=8),
    "popularity_recall": Compute(cpu=2, memory_gib=4),
    "itemcf_recall": Compute(cpu=4, memory_gib=6),
    "semantic_recall": Compute(cpu=4, memory_gib=6),
    "two_tower_recall": Compute(cpu=4, memory_gib=12, gpu=1),  # 3.1 GB peak on the CPU; epochs on the GPU
    "recall_candidates": Compute(cpu=2, memory_gib=8),  # 5,000-user merge chunks: 3.9 GB peak at 32M
    "recall_metrics": Compute(cpu=2, memory_gib=8),
    # ranking: the point-in-time stores, then one pod per shard (2.63 GB peak, half of it the mapped stores)
    "user_sequences": Compute(cpu=2, memory_gib=8),
    "item_profile": Compute(cpu=2, memory_gib=8),
    "user_profile": Compute(cpu=2, memory_gib=8),
    "ranking_samples": Compute(cpu=1, memory_gib=4),
    "ranking_eda": Compute(cpu=2, memory_gib=8),
    "unified_ranker": Compute(cpu=8, memory_gib=16, gpu=1),  # streams the ~320M sample rows of every shard
    "ranked_recommendations": Compute(cpu=8, memory_gib=16),  # CPU scoring, one worker per core (~0.6 GB each)
    "ranking_metrics": Compute(cpu=2, memory_gib=8),
}


def compute(step: str) -> dict[str, Any]:
    """`pool` and `op_tags` keyword arguments of `@dg.asset` / `@dg.multi_asset` for the step `step`."""
    spec = COMPUTE[step]
    return {"pool": spec.pool, "op_tags": {K8S_CONFIG_TAG: spec.k8s_config()}}
