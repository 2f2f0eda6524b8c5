"""`UnifiedRankerConfig`: the ranker's architecture and optimisation settings, torch-free.

Kept apart from `model.py` (which imports torch at import time) so that the Dagster code location can take
its run-config defaults from it without importing torch (docs/RANKING.md, "The UnifiedRanker").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

TASKS = ("watch", "like")
_TUPLE_FIELDS = ("attention_hidden", "expert_hidden", "tower_hidden", "tasks", "task_weights")


@dataclass(frozen=True)
class UnifiedRankerConfig:
    # ---- vocabularies (each includes index 0 = unknown / padding)
    n_users: int = 1
    n_items: int = 1
    n_genres: int = 1
    n_year_buckets: int = 1
    n_directors: int = 0  # 0 = no director input (the table must then be None)
    n_cast: int = 0  # 0 = no cast input
    semantic_dim: int = 0  # d_sem of the semantic table; 0 = no semantic input
    # top principal directions of the semantic table kept by the model (None: the full d_sem). The full
    # 384-d projection per item and step cost more than the rest of the model (module docstring); the learned
    # projection keeps at most D directions anyway, 2D principal ones leave it the choice
    semantic_rank: int | None = 32
    dense_features: int = 0  # F (0 in the "no features" ablations)
    history_len: int = 50  # L the loader pads to (the model accepts any L)
    # ---- architecture
    embed_dim: int = 16  # D: every embedding, the item representation and the pooled history
    attention_hidden: tuple[int, ...] = (16,)  # DIN attention unit (per-position cost ~ L * H)
    attention_activation: str = "relu"
    use_din: bool = True  # False: masked mean of the history keys (the "no DIN" ablation)
    use_cross: bool = True  # False: no cross network ("MLP only")
    cross_layers: int = 2
    cross_rank: int | None = None  # None: full-rank W_l (d = 3D + F ~ 100: d^2 is cheap); r: W_l = U V^T
    n_experts: int = 4
    # the experts are most of the model's multiply-adds per sample: 4 x (d0 x 64 + 64 x 32) for d0 = 3D + F
    expert_hidden: tuple[int, ...] = (64, 32)
    tower_hidden: tuple[int, ...] = (16,)
    activation: str = "relu"  # experts and towers
    dropout: float = 0.0
    tasks: tuple[str, ...] = TASKS
    task_weights: tuple[float, ...] = ()  # aligned with `tasks`; () = 1.0 each
    dedup_items: bool = True  # item representations once per distinct item of the batch
    # ---- optimisation (`build_optimizers`)
    sparse_embeddings: bool = True  # user / item / director / cast tables: sparse gradients + SparseAdam
    optimizer: str = "adam"  # "adam" | "adamw" for the dense parameters
    lr: float = 1e-3
    sparse_lr: float | None = None  # None: `lr`
    weight_decay: float = 0.0  # dense parameters only (SparseAdam has none)
    seed: int = 0  # for the training loop (the model itself does not seed torch)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("at least one task")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"duplicate tasks {self.tasks}")
        if self.task_weights and len(self.task_weights) != len(self.tasks):
            raise ValueError(f"task_weights {self.task_weights} do not match tasks {self.tasks}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        if min(self.n_users, self.n_items, self.n_genres, self.n_year_buckets) < 1:
            raise ValueError("vocabulary sizes count index 0: at least 1")

    @property
    def weights_by_task(self) -> dict[str, float]:
        ws = self.task_weights or (1.0,) * len(self.tasks)
        return dict(zip(self.tasks, (float(w) for w in ws), strict=True))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> UnifiedRankerConfig:
        d = dict(d)
        for key in _TUPLE_FIELDS:
            if key in d and d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)
