"""Training the UnifiedRanker on the sample shards, and the checkpoint that serves it.

- `fit_ranker`: vocabularies and normalisation statistics from the TRAINING rows only, then epochs over the
  streamed shards (`loader.SampleStream`, DataLoader workers gather the histories), SparseAdam for the id
  tables and Adam for the rest, early stopping on the validation GAUC of `watch` (an epoch becomes the best
  only when its paired gain over the validation users beats `min_gain_z` standard errors; the best epoch's
  weights are kept), and a training log (loss per epoch, validation AUC / GAUC / logloss per task, the gain
  over the best epoch with its standard error, samples/s, device).
- `RankerCheckpoint`: everything needed to score again, in one directory written atomically — weights (item
  side tables included), the model and training configs, vocabularies, normalisation statistics, the data it
  was trained on, the training log, and a fixed set of validation rows with their scores: loading the
  directory and scoring those rows must give the same scores (`verify`).
- `score_table`: any table of sample-like rows -> probabilities per task, a batch at a time.
- `train_rankers`: the full model and its ablations (`ranker_runs`) trained one after the other, each saved
  as a checkpoint directory, the full model's training curve plotted -> `RankerRuns` (what the
  `unified_ranker` asset reports).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movielens_assets.core.evaluation.metrics import auc, gauc, group_aucs, logloss, paired_gain
from movielens_assets.core.ranking.data import BatchBuilder, Normalizer, RankingVocab
from movielens_assets.core.ranking.profiles import ItemFeatures
from movielens_assets.core.ranking.sequences import SequenceStore

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import torch

    from movielens_assets.core.ranking.config import UnifiedRankerConfig
    from movielens_assets.core.ranking.model import UnifiedRanker

CHECK_ROWS = 2048


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 1024
    train_role: str = "train"
    """Rows trained on: `train` (every non-validation group) or `train_window` (window groups only)."""
    other_fraction: float = 1.0
    """Share of the non-window rows kept per epoch (a fresh draw each epoch; window rows always kept)."""
    window_share: float | None = None
    """Target share of window rows in an epoch: sets `other_fraction` from the shards' counts (None: use
    `other_fraction`). The window groups are the rows where the ranker serves (candidates of a recall stage,
    recall features present); at their natural ~2% the model under-learns them (docs/EVALUATION.md)."""
    max_rows_per_epoch: int | None = None
    """Bound of an epoch (a fresh shuffle of the units each epoch); None: every training row."""
    patience: int = 1
    """Epochs without a better validation GAUC (watch) before stopping."""
    min_gain_z: float = 2.0
    """An epoch replaces the best one only when its validation GAUC (watch) gain, paired over the validation
    users (per-user AUC differences, impression-weighted), exceeds `min_gain_z` standard errors (0: any gain).
    On a few hundred validation users a GAUC moves between epochs from noise alone; without this rule training
    kept such noise peaks (docs/EVALUATION.md, "Ranking", synthetic-small)."""
    num_workers: int = 1
    """DataLoader worker processes gathering batches (0: in the training process)."""
    num_threads: int | None = None
    """torch intra-op threads while training (None: torch's default)."""
    normalizer_rows: int = 500_000
    """Training rows the normalisation statistics are fitted on (a seeded sample of the units)."""
    exclude_features: tuple[str, ...] = ()
    """Feature columns (or `prefix*`) left out of the dense input, e.g. `ch_*` for the no-recall ablation."""
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        d = dict(d)
        d["exclude_features"] = tuple(d.get("exclude_features", ()))
        return cls(**d)


def feature_columns(files: Sequence[Path], exclude: Sequence[str] = ()) -> list[str]:
    """The feature columns of the sample files (everything after the key columns), minus `exclude`."""
    import pyarrow.parquet as pq

    from movielens_assets.core.ranking.samples import KEY_COLUMNS

    names = [n for n in pq.read_schema(files[0]).names if n not in KEY_COLUMNS]

    def excluded(name: str) -> bool:
        return any(name.startswith(e[:-1]) if e.endswith("*") else name == e for e in exclude)

    return [n for n in names if not excluded(n)]


def fit_normalizer(units: list[tuple[Path, int, int]], names: list[str], max_rows: int, seed: int) -> Normalizer:
    """Statistics from training rows only (role `train`), about `max_rows` of them over a seeded set of units."""
    import pyarrow.parquet as pq

    from movielens_assets.core.ranking.loader import role_mask

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(units))
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    rows = 0
    for i in order:
        path, group, _ = units[i]
        t = pq.ParquetFile(path).read_row_group(group, columns=[*names, "valid", "in_window"])
        keep = role_mask(t.column("valid").to_numpy(), t.column("in_window").to_numpy(), "train")
        for n in names:
            parts[n].append(t.column(n).to_numpy(zero_copy_only=False)[keep])
        rows += int(keep.sum())
        if rows >= max_rows:
            break
    return Normalizer.fit({n: np.concatenate(v) if v else np.zeros(0) for n, v in parts.items()})


def _to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def predict(model: UnifiedRanker, batches, device: str | torch.device = "cpu"
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(probabilities per task, labels and ids per row) over an iterable of batches (NumPy or torch)."""
    import torch

    dev = torch.device(device)
    probs: dict[str, list[np.ndarray]] = {t: [] for t in model.config.tasks}
    labels: dict[str, list[np.ndarray]] = {"watch": [], "like": [], "user": []}
    model.eval()
    with torch.inference_mode():
        for batch in batches:
            tb = {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v)))
                  for k, v in batch.items()}
            out = model(_to_device(tb, dev))
            for t, z in out.items():
                probs[t].append(torch.sigmoid(z).float().cpu().numpy())
            for k in labels:
                labels[k].append(tb[k].numpy())

    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0)

    return {t: cat(v) for t, v in probs.items()}, {k: cat(v) for k, v in labels.items()}


def classification_metrics(probs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> dict:
    """AUC, GAUC (per user) and logloss per task; for `like` also among watched rows only."""
    out: dict[str, Any] = {"auc": {}, "gauc": {}, "logloss": {}}  # {metric: {task: value}} and "rows"
    for task, p in probs.items():
        y, users = labels[task], labels["user"]
        out["auc"][task] = auc(p, y)
        out["gauc"][task] = gauc(p, y, users)[0]
        out["logloss"][task] = logloss(p, y)
    if "like" in probs:
        w = labels["watch"] > 0
        out["auc"]["like_watched"] = auc(probs["like"][w], labels["like"][w])
        out["gauc"]["like_watched"] = gauc(probs["like"][w], labels["like"][w], labels["user"][w])[0]
        out["logloss"]["like_watched"] = logloss(probs["like"][w], labels["like"][w])
    out["rows"] = int(next(iter(labels.values())).size)
    return out


@dataclass
class TrainingLog:
    device: str
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    train_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def train(model: UnifiedRanker, train_stream, valid_batches: list[dict], config: TrainConfig, device: str,
          log: Callable[[str], None] | None = None) -> TrainingLog:
    """Epochs of `train_stream` (a loader.SampleStream) with early stopping on validation GAUC (watch: a
    significant paired gain over the best epoch, `TrainConfig.min_gain_z`); the best epoch's weights are
    loaded back into `model` at the end."""
    import copy

    import torch

    from movielens_assets.core.ranking.loader import unpack_batch
    from movielens_assets.core.ranking.model import build_optimizers, ranker_loss

    say = log or (lambda _msg: None)
    dev = torch.device(device)
    model.to(dev)
    optimizers = build_optimizers(model, model.config)
    weights = model.config.weights_by_task
    history = TrainingLog(device=str(dev))
    best_users, best_state, bad_epochs = None, None, 0
    t_start = time.perf_counter()
    with torch_threads(config.num_threads):
        for epoch in range(config.epochs):
            train_stream.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(train_stream, batch_size=None, num_workers=config.num_workers,
                                                 persistent_workers=False)
            model.train()
            t0 = time.perf_counter()
            total, parts, seen, steps = 0.0, {t: 0.0 for t in model.config.tasks}, 0, 0
            next_log = t0 + 60.0
            for packed in loader:
                batch = _to_device(unpack_batch(packed), dev)
                logits = model(batch)
                loss, per_task = ranker_loss(logits, batch, weights)
                optimizers.zero_grad(set_to_none=True)
                loss.backward()
                optimizers.step()
                n = int(batch["item"].shape[0])
                total += float(loss.detach()) * n
                for t, v in per_task.items():
                    parts[t] += float(v.detach()) * n
                seen += n
                steps += 1
                if time.perf_counter() > next_log:
                    say(f"epoch {epoch + 1}/{config.epochs}: {seen:,} samples ({seen / (time.perf_counter() - t0):,.0f}"
                        "/s)")
                    next_log = time.perf_counter() + 60.0
            seconds = time.perf_counter() - t0
            probs, labels = predict(model, valid_batches, dev)
            metrics = classification_metrics(probs, labels)
            entry: dict[str, Any] = {"epoch": epoch + 1, "loss": total / max(seen, 1),
                                     "loss_by_task": {t: v / max(seen, 1) for t, v in parts.items()},
                                     "samples": seen, "seconds": round(seconds, 2),
                                     "samples_per_s": round(seen / max(seconds, 1e-9), 1), "valid": metrics}
            history.epochs.append(entry)
            g = metrics["gauc"].get("watch", float("nan"))
            say(f"epoch {epoch + 1}/{config.epochs}: loss {entry['loss']:.4f}, {seen:,} samples in {seconds:.0f}s "
                f"({entry['samples_per_s']:,.0f}/s); valid GAUC watch {g:.4f}, AUC watch "
                f"{metrics['auc'].get('watch', float('nan')):.4f}, "
                f"GAUC like {metrics['gauc'].get('like', float('nan')):.4f}")
            per_user = group_aucs(probs["watch"], labels["watch"], labels["user"]) if "watch" in probs else None
            better, entry["vs_best"] = _improves(per_user, best_users, config.min_gain_z)
            if better:
                best_users, bad_epochs, history.best_epoch = per_user, 0, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
                say(f"epoch {epoch + 1}: not a significant gain over epoch {history.best_epoch} "
                    f"({_describe(entry['vs_best'])})")
                if bad_epochs > config.patience:
                    history.stopped_early = True
                    say(f"early stop: validation GAUC did not improve for {bad_epochs} epochs")
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.train_seconds = round(time.perf_counter() - t_start, 2)
    return history


def _improves(new: tuple | None, best: tuple | None, z: float) -> tuple[bool, dict | None]:
    """Whether an epoch's per-user validation AUCs (`group_aucs` of watch) beat the best epoch's: the first
    epoch with a finite GAUC always does; later ones when the paired, impression-weighted gain exceeds
    max(0, z standard errors). Returns (better, {"gain", "se", "z"} or None for the first)."""
    if new is None or new[1].size == 0:
        return False, None
    if best is None:
        return True, None
    if new[0].shape != best[0].shape or (new[0] != best[0]).any():
        raise ValueError("the validation users changed between epochs: paired comparison impossible")
    gain, se = paired_gain(new[1], best[1], new[2])
    return bool(gain > 0 and gain > z * se), {"gain": round(gain, 6), "se": round(se, 6), "z": z}


def _describe(vs_best: dict | None) -> str:
    if vs_best is None:
        return "no validation GAUC"
    return f"gain {vs_best['gain']:+.4f}, SE {vs_best['se']:.4f}, needs > {vs_best['z']:g} SE"


def _other_fraction(units: list[tuple[Path, int, int]], role: str, window_share: float) -> float:
    """The share of non-window training rows to keep so that window rows make `window_share` of an epoch."""
    import pyarrow.parquet as pq

    from movielens_assets.core.ranking.loader import role_mask

    if not 0.0 < window_share < 1.0:
        raise ValueError(f"window_share must be in (0, 1), got {window_share}")
    window = other = 0
    for path, group, _ in units:
        t = pq.ParquetFile(path).read_row_group(group, columns=["valid", "in_window"])
        in_window = t.column("in_window").to_numpy()
        keep = role_mask(t.column("valid").to_numpy(), in_window, role)
        window += int((keep & (in_window == 1)).sum())
        other += int((keep & (in_window == 0)).sum())
    if other == 0:
        return 1.0
    return float(min(1.0, window * (1.0 - window_share) / (window_share * other)))


def _valid_batches(units, builder: BatchBuilder, batch_size: int) -> list[dict]:
    from movielens_assets.core.ranking.loader import SampleStream, StreamConfig

    stream = SampleStream(units, builder, StreamConfig(batch_size=batch_size, role="valid", shuffle=False))
    return list(stream.iterate())


@dataclass
class FitResult:
    model: UnifiedRanker
    vocab: RankingVocab
    normalizer: Normalizer
    item_tables: dict[str, np.ndarray | None]
    log: TrainingLog
    valid_batches: list[dict]
    config: TrainConfig  # as trained: `other_fraction` resolved from `window_share`


def fit_ranker(files: Sequence[Path], store: SequenceStore, items: ItemFeatures, model_config: UnifiedRankerConfig,
               config: TrainConfig, device: str = "cpu", log: Callable[[str], None] | None = None) -> FitResult:
    """Build the vocabularies, the normalisation (training rows only) and the model, then `train`."""
    import torch

    from movielens_assets.core.ranking.loader import SampleStream, StreamConfig, row_groups
    from movielens_assets.core.ranking.model import UnifiedRanker

    say = log or (lambda _msg: None)
    torch.manual_seed(config.seed)
    units = row_groups(files)
    if not units:
        raise ValueError("the sample shards hold no rows: materialize `ranking_samples` (every partition) first")
    names = feature_columns(files, config.exclude_features)
    if config.window_share is not None:
        config = replace(config, other_fraction=_other_fraction(units, config.train_role, config.window_share))
        say(f"ranker: window share {config.window_share:.2f} -> {config.other_fraction:.3f} "
            "of the other rows per epoch")
    normalizer = fit_normalizer(units, names, config.normalizer_rows, config.seed)
    vocab = RankingVocab.build(store, items)
    tables = vocab.item_tables(items)
    sizes = vocab.sizes
    model_config = replace(
        model_config, n_users=sizes["users"], n_items=sizes["items"], n_genres=sizes["genres"],
        n_year_buckets=sizes["year_buckets"], n_directors=sizes["directors"] if tables["directors"] is not None else 0,
        n_cast=sizes["cast"] if tables["cast"] is not None else 0,
        semantic_dim=tables["semantic"].shape[1] if tables["semantic"] is not None else 0,
        dense_features=normalizer.width)
    model = UnifiedRanker(model_config, tables["genres"], tables["year_bucket"], tables["directors"], tables["cast"],
                          tables["semantic"], tables["semantic_mask"])
    builder = BatchBuilder(store, vocab, normalizer, model_config.history_len)
    valid = _valid_batches(units, builder, 4096)
    say(f"ranker: {sum(u[2] for u in units):,} sample rows in {len(units)} row groups, {len(names)} features "
        f"({normalizer.width} dense inputs with missing indicators), {sum(int(b['item'].shape[0]) for b in valid):,} "
        f"validation rows; vocab {sizes}")
    stream = SampleStream(units, builder, StreamConfig(batch_size=config.batch_size, role=config.train_role,
                                                       max_rows=config.max_rows_per_epoch, seed=config.seed,
                                                       other_fraction=config.other_fraction))
    history = train(model, stream, valid, config, device, say)
    model.to("cpu")
    return FitResult(model, vocab, normalizer, tables, history, valid, config)


# ------------------------------------------------------------------------------------------------ checkpoint


class RankerCheckpoint:
    """A trained ranker with everything that turns sample rows into its inputs (see the module docstring)."""

    def __init__(self, model: UnifiedRanker, vocab: RankingVocab, normalizer: Normalizer,
                 item_tables: Mapping[str, np.ndarray | None], train_config: TrainConfig, meta: dict):
        self.model = model
        self.vocab = vocab
        self.normalizer = normalizer
        self.item_tables = dict(item_tables)
        self.train_config = train_config
        self.meta = meta

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.model.config.tasks)

    def builder(self, store: SequenceStore) -> BatchBuilder:
        return BatchBuilder(store, self.vocab, self.normalizer, self.model.config.history_len)

    def score_batches(self, batches) -> dict[str, np.ndarray]:
        return predict(self.model, batches)[0]

    def save(self, directory: str | os.PathLike[str], check_batch: dict[str, np.ndarray] | None = None) -> None:
        """Write the directory atomically; `check_batch` (model inputs) is stored with its scores for `verify`."""
        import torch

        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            torch.save(self.model.state_dict(), tmp / "model.pt")
            (tmp / "model_config.json").write_text(json.dumps(self.model.config.to_dict(), indent=2))
            (tmp / "train_config.json").write_text(json.dumps(self.train_config.to_dict(), indent=2))
            (tmp / "normalizer.json").write_text(json.dumps(self.normalizer.to_dict(), indent=2))
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
            self.vocab.save(tmp)
            # numpy's savez stub has `allow_pickle: bool` next to `**kwds: ArrayLike`: mypy cannot tell that a
            # dict of arrays has no key "allow_pickle" and rejects the **dict (both calls below)
            tables = {k: v for k, v in self.item_tables.items() if v is not None}
            np.savez(tmp / "item_tables.npz", **tables)  # type: ignore[arg-type]  # numpy stub, see above
            if check_batch is not None:
                scores = predict(self.model, [check_batch])[0]
                arrays = {**{f"in_{k}": v for k, v in check_batch.items()},
                          **{f"score_{k}": v for k, v in scores.items()}}
                np.savez(tmp / "check.npz", **arrays)  # type: ignore[arg-type]  # numpy stub, see above

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RankerCheckpoint:
        import torch

        from movielens_assets.core.ranking.config import UnifiedRankerConfig
        from movielens_assets.core.ranking.model import UnifiedRanker

        directory = Path(directory)
        if not (directory / "model.pt").is_file():
            raise FileNotFoundError(f"{directory}: no ranker checkpoint here (materialize `unified_ranker` first)")
        config = UnifiedRankerConfig.from_dict(json.loads((directory / "model_config.json").read_text()))
        tables = dict(np.load(directory / "item_tables.npz"))
        model = UnifiedRanker(config, tables["genres"], tables["year_bucket"], tables.get("directors"),
                              tables.get("cast"), tables.get("semantic"), tables.get("semantic_mask"))
        model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
        model.eval()
        return cls(model, RankingVocab.load(directory), Normalizer.from_dict(
            json.loads((directory / "normalizer.json").read_text())), tables,
            TrainConfig.from_dict(json.loads((directory / "train_config.json").read_text())),
            json.loads((directory / "meta.json").read_text()))

    @staticmethod
    def verify(directory: str | os.PathLike[str]) -> dict:
        """Reload the checkpoint and rescore its stored validation rows: {"rows", "max_abs_diff", "passed"}."""
        checkpoint = RankerCheckpoint.load(directory)
        stored = np.load(Path(directory) / "check.npz")
        batch = {k[3:]: stored[k] for k in stored.files if k.startswith("in_")}
        scores = checkpoint.score_batches([batch])
        diff = max(float(np.abs(scores[t] - stored[f"score_{t}"]).max(initial=0.0)) for t in scores)
        return {"rows": int(batch["item"].shape[0]), "max_abs_diff": diff, "passed": diff <= 1e-6}


def first_rows(batches: list[dict], n: int = CHECK_ROWS) -> dict[str, np.ndarray]:
    """The first `n` rows of a list of batches, as one batch (the checkpoint's verification rows)."""
    out: dict[str, list[np.ndarray]] = {}
    for b in batches:
        for k, v in b.items():
            out.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v)[:n] for k, v in out.items()}


def score_table(checkpoint: RankerCheckpoint, builder: BatchBuilder, table: pa.Table, batch_size: int = 2048
                ) -> dict[str, np.ndarray]:
    """Probabilities per task for every row of `table` (sample-like rows: ids, seq_pos, cut-off, features);
    consecutive rows of one history (a user's candidates) share its keys (`BatchBuilder(group_histories=True)`).
    Batches of 2,048: faster than 8,192 on a CPU (the (B, 50, D) temporaries of larger batches leave the cache;
    benchmarks/ranker.py)."""
    out: dict[str, list[np.ndarray]] = {t: [] for t in checkpoint.tasks}
    for start in range(0, table.num_rows, batch_size):
        scores = checkpoint.score_batches([builder(table.slice(start, batch_size), group_histories=True)])
        for t, v in scores.items():
            out[t].append(v)
    return {t: np.concatenate(v) if v else np.zeros(0, np.float32) for t, v in out.items()}


ABLATIONS: dict[str, dict[str, dict]] = {
    "full_same_budget": {},
    "no_din": {"model": {"use_din": False}},
    "no_cross": {"model": {"use_cross": False}},
    "single_task": {"model": {"tasks": ("watch",), "task_weights": ()}},
    "no_recall_features": {"train": {"exclude_features": ("ch_*",)}},
}
"""The ablations reported beside the full model: without DIN (masked-mean history), without the cross network
(MLP only), single-task (watch only), without the recall-channel features — and the full model itself trained
with the ablations' budget (`full_same_budget`), the row they compare with when they are trained on fewer
rows than the full model."""


def ablation(name: str, model_config: UnifiedRankerConfig, config: TrainConfig
             ) -> tuple[UnifiedRankerConfig, TrainConfig]:
    """The (model, training) configs of ablation `name` derived from the full model's."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; expected one of {sorted(ABLATIONS)}")
    change = ABLATIONS[name]
    return replace(model_config, **change.get("model", {})), replace(config, **change.get("train", {}))


FULL_MODEL = "unified_ranker"
"""The run name of the full model (its ablations are named after `ABLATIONS`)."""


def ranker_runs(model_config: UnifiedRankerConfig, config: TrainConfig, ablations: Sequence[str] = (),
                ablation_epochs: int | None = None) -> dict[str, tuple[UnifiedRankerConfig, TrainConfig]]:
    """{run name: (model, training) configs}: the full model, then each of `ablations` (`ablation`) trained for
    `ablation_epochs` epochs (None: the full model's)."""
    runs = {FULL_MODEL: (model_config, config)}
    for name in ablations:
        m, t = ablation(name, model_config, config)
        runs[name] = (m, t if ablation_epochs is None else replace(t, epochs=ablation_epochs))
    return runs


@dataclass
class TrainedRanker:
    """The full model's training as reported: checkpoint directory, epochs of its log, the best epoch (the
    last when none was best), train seconds, parameter count and the configs as trained."""

    out: Path
    epochs: list[dict]
    best: dict
    train_seconds: float
    parameters: int
    model_config: dict
    train_config: dict


@dataclass
class RankerRuns:
    """What `train_rankers` did: per run, {"best_epoch", "valid_gauc", "samples_per_s", "train_seconds"};
    `full`: the full model's training (None when no run is named `FULL_MODEL`)."""

    summary: dict[str, dict] = field(default_factory=dict)
    full: TrainedRanker | None = None


def train_rankers(files: Sequence[Path], store: SequenceStore, items: ItemFeatures,
                  runs: Mapping[str, tuple[UnifiedRankerConfig, TrainConfig]], out_dir: Callable[[str], Path],
                  data: dict, *, device: str = "cpu", log: Callable[[str], None] | None = None) -> RankerRuns:
    """Train each run (`ranker_runs`) on the sample `files` (`fit_ranker`) and save it as a checkpoint
    directory at `out_dir(name)` (meta: name, `data`, training log, features, best validation metrics, the
    other runs' names as `ablations`); the full model's training curve -> `training_curve.png` beside it.
    One fitted model is held at a time."""
    from movielens_assets.core.ranking.report import training_curve_png

    say = log or (lambda _msg: None)
    done = RankerRuns()
    for name, (m, t) in runs.items():
        say(f"training {name} on {device} ({t.epochs} epochs of at most {t.max_rows_per_epoch or 'all'} rows)")
        result = fit_ranker(files, store, items, m, t, device=device, log=log)
        out = out_dir(name)
        best = result.log.epochs[result.log.best_epoch - 1] if result.log.best_epoch > 0 else result.log.epochs[-1]
        meta = {"name": name, "data": data, "training_log": result.log.to_dict(),
                "features": list(result.normalizer.names), "valid": best["valid"],
                "ablations": [n for n in runs if n != FULL_MODEL]}
        RankerCheckpoint(result.model, result.vocab, result.normalizer, result.item_tables, result.config,
                         meta).save(out, first_rows(result.valid_batches))
        done.summary[name] = {"best_epoch": result.log.best_epoch, "valid_gauc": best["valid"]["gauc"],
                              "samples_per_s": best["samples_per_s"], "train_seconds": result.log.train_seconds}
        if name == FULL_MODEL:
            training_curve_png(result.log.epochs, out / "training_curve.png")
            done.full = TrainedRanker(
                out=out, epochs=result.log.epochs, best=best, train_seconds=result.log.train_seconds,
                parameters=int(sum(p.numel() for p in result.model.parameters())),
                model_config=result.model.config.to_dict(), train_config=result.config.to_dict())
    return done


class torch_threads:  # noqa: N801 - a context manager used like a function
    """`with torch_threads(n):` runs the block with n torch intra-op threads (None: unchanged), then restores."""

    def __init__(self, n: int | None):
        self.n = n
        self.old: int | None = None

    def __enter__(self) -> None:
        import torch

        if self.n:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        import torch

        if self.old is not None:
            torch.set_num_threads(self.old)
