"""Streaming the sample shards into model batches: never all samples at once.

The unit of work is one Parquet row group (256k rows) of one shard file. Each epoch shuffles the units,
every DataLoader worker takes every n-th unit, reads it (only the columns the batch needs), keeps the rows
of the requested role, permutes them together with the next unit's rows (`mix_units` row groups at a time,
so a batch mixes users of several row groups) and yields ready batches: the history windows are gathered
from the memory-mapped sequence store inside the worker (`BatchBuilder`). Roles:

- `train`: every row of a group that is not a validation group (`valid = 0`);
- `train_window`: only the window groups (the ranker sees just the rows where it serves);
- `valid`: the validation groups (window groups of held-out users) — early stopping;
- `all`: every row.

`max_rows` bounds an epoch (a CPU run at 32M ratings need not see all ~320M rows per epoch).
This module imports torch (it is a torch IterableDataset): Dagster-side code imports it inside functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from movielens_assets.core.ranking.data import BatchBuilder

ROLES = ("train", "train_window", "valid", "all")
_FLAGS = ("valid", "in_window")


def row_groups(files: Sequence[Path]) -> list[tuple[Path, int, int]]:
    """(file, row group, rows) of every non-empty row group of the shard files."""
    import pyarrow.parquet as pq

    units = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        units += [(Path(path), i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)
                  if meta.row_group(i).num_rows]
    return units


def role_mask(valid: np.ndarray, in_window: np.ndarray, role: str) -> np.ndarray:
    if role == "train":
        return valid == 0
    if role == "train_window":
        return (valid == 0) & (in_window == 1)
    if role == "valid":
        return valid == 1
    if role == "all":
        return np.ones(valid.shape, bool)
    raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int = 1024
    role: str = "train"
    shuffle: bool = True
    mix_units: int = 2
    max_rows: int | None = None
    seed: int = 0
    drop_last: bool = False
    other_fraction: float = 1.0
    """Share of the rows OUTSIDE the window groups kept (a fresh seeded draw per epoch): below 1 the epoch is
    tilted toward the window rows, where the ranker serves; window rows are always kept."""


class SampleStream(torch.utils.data.IterableDataset):
    """Batches over the units: `iterate(worker, n_workers)` gives dicts of NumPy arrays; iterating the object
    (as a DataLoader does, `batch_size=None`) gives dicts of tensors, the units split across the workers."""

    def __init__(self, units: list[tuple[Path, int, int]], builder: BatchBuilder, config: StreamConfig):
        super().__init__()
        if config.role not in ROLES:
            raise ValueError(f"unknown role {config.role!r}; expected one of {ROLES}")
        self.units = units
        self.builder = builder
        self.config = config
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _my_units(self, worker: int, n_workers: int) -> list[tuple[Path, int, int]]:
        order = list(range(len(self.units)))
        if self.config.shuffle:
            np.random.default_rng([self.config.seed, self.epoch]).shuffle(order)
        return [self.units[i] for i in order[worker::n_workers]]

    def iterate(self, worker: int = 0, n_workers: int = 1) -> Iterator[dict[str, np.ndarray]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, worker, 1])
        budget = None if cfg.max_rows is None else max(1, cfg.max_rows // n_workers)
        columns = list(dict.fromkeys([*self.builder.columns, *_FLAGS]))
        units = self._my_units(worker, n_workers)
        pending: pa.Table | None = None
        emitted = 0
        for start in range(0, len(units), max(1, cfg.mix_units)):
            tables = []
            for path, group, _ in units[start : start + max(1, cfg.mix_units)]:
                t = pq.ParquetFile(path).read_row_group(group, columns=columns)
                in_window = t.column("in_window").to_numpy()
                keep = role_mask(t.column("valid").to_numpy(), in_window, cfg.role)
                if cfg.other_fraction < 1.0:
                    keep &= (in_window == 1) | (rng.random(in_window.size) < cfg.other_fraction)
                if not keep.all():
                    t = t.filter(pa.array(keep))
                if t.num_rows:
                    tables.append(t)
            if not tables:
                continue
            table = pa.concat_tables(([pending] if pending is not None else []) + tables)
            if cfg.shuffle:
                table = table.take(pa.array(rng.permutation(table.num_rows)))
            n_full = table.num_rows // cfg.batch_size
            for b in range(n_full):
                if budget is not None and emitted >= budget:
                    return
                yield self.builder(table.slice(b * cfg.batch_size, cfg.batch_size))
                emitted += cfg.batch_size
            rest = table.num_rows - n_full * cfg.batch_size
            pending = table.slice(n_full * cfg.batch_size, rest) if rest else None
        if pending is not None and pending.num_rows and not cfg.drop_last and (budget is None or emitted < budget):
            yield self.builder(pending)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Packed batches (`pack_batch`): three tensors cross the worker -> trainer boundary instead of nine
        (each tensor costs a shared-memory handle: the transfer cost as much as building the batch)."""
        info = torch.utils.data.get_worker_info()
        worker, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for batch in self.iterate(worker, n):
            yield pack_batch(batch)




def pack_batch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A model batch as three tensors: `ints` (B, 2 + L) = [user, item, hist_items], `floats`
    (B, 2 + 2L + F) = [watch, like, hist_ratings, hist_log_gap, dense], `mask` (B, L) bool."""
    ints = np.concatenate([batch["user"][:, None], batch["item"][:, None], batch["hist_items"]], axis=1)
    floats = np.concatenate([batch["watch"][:, None], batch["like"][:, None], batch["hist_ratings"],
                             batch["hist_log_gap"], batch["dense"]], axis=1).astype(np.float32, copy=False)
    return {"ints": torch.from_numpy(np.ascontiguousarray(ints, dtype=np.int64)),
            "floats": torch.from_numpy(np.ascontiguousarray(floats)),
            "mask": torch.from_numpy(np.ascontiguousarray(batch["hist_mask"]))}


def unpack_batch(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's input dict from `pack_batch`'s tensors (views, no copy)."""
    ints, floats, mask = packed["ints"], packed["floats"], packed["mask"]
    length = mask.shape[1]
    return {"user": ints[:, 0], "item": ints[:, 1], "hist_items": ints[:, 2:], "hist_mask": mask,
            "watch": floats[:, 0], "like": floats[:, 1], "hist_ratings": floats[:, 2 : 2 + length],
            "hist_log_gap": floats[:, 2 + length : 2 + 2 * length], "dense": floats[:, 2 + 2 * length :]}
