"""The recall pipeline's orchestration in plain Python (the `recall` assets call it; no Dagster here).

- `RecallPaths`      where the recall group's files are (`<data>/recall/`, `<data>/models/recall/`).
- `run_channels`     fit each channel on every stage of every protocol, save it, write its candidates for the
                     stage's users -> `ChannelRunStats` (fit seconds, rows, users/s, training curves).
- `merge_channels`   tune each protocol's RRF weights on its window stage (`tune_merge_weights`), write them,
                     merge the channels' lists of both stages -> `MergeRunStats`.
- `evaluate_channels` HR / Recall / NDCG … of every evaluated channel over all test users -> the report dict
                     of `metrics/recall.json`.

Every stage runs on the DuckDB connection it is given (the asset passes the lake's, with its memory bound and
spill directory). Progress lines go to a `progress` callback (the assets pass `context.log.info`), warnings
to `warn` (default: `progress`). Files and stages: see `movielens_assets.assets.recall`.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movielens_assets.core.evaluation.splits import (
    PROTOCOLS,
    WINDOW,
    Split,
    Stage,
    load_stage,
    load_targets,
    protocol_stages,
    with_target,
)
from movielens_assets.core.recall.base import BaseRecall, IdMap

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    from typing_extensions import TypeIs

CANDIDATES_PER_CHANNEL = 200
RECOMMEND_BATCH = 4096
RECALL_CHANNELS: tuple[str, ...] = ("popularity", "itemcf", "two_tower", "semantic")
"""Channels merged into `recall_candidates` (each has an asset named `<channel>_recall`)."""
EXTRA_CHANNELS: tuple[str, ...] = ("popularity_recent",)
"""Channels written and evaluated, but not merged."""
MERGED = "merged"
MERGE_DEFAULT = "rrf"
"""`merged` is reciprocal-rank fusion with channel weights tuned per protocol on its window stage
(`core.recall.merge.tune_rrf_weights`: significant moves from equal weights only, never below the best single
channel on the window); `merged_quota` (equal weights) is written and evaluated beside it. Measurements:
docs/EVALUATION.md."""

Progress = Callable[[str], None]
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _quiet(_msg: str) -> None:
    return None


@dataclass(frozen=True)
class RecallPaths:
    """The recall group's file layout under a lake's `recall_dir` and `models_dir`."""

    recall_dir: Path
    models_dir: Path

    @property
    def splits_dir(self) -> Path:
        return self.recall_dir / "splits"

    def stages(self, protocol: str) -> tuple[Stage, Stage]:
        """The (test, window) stages of `protocol`."""
        return protocol_stages(self.splits_dir, protocol)

    def candidates(self, protocol: str, channel: str, stage: str = "test") -> Path:
        """Candidates of `channel` for the users of `stage` ("test", or "window": the window users)."""
        base = self.recall_dir / "candidates" / protocol
        return (base if stage == "test" else base / stage) / f"{channel}.parquet"

    def model(self, protocol: str, channel: str, stage: str = "test") -> Path:
        base = self.models_dir / "recall" / protocol
        return (base if stage == "test" else base / stage) / channel

    def merge_weights(self, protocol: str) -> Path:
        return self.recall_dir / "candidates" / protocol / "merge_weights.json"


# ------------------------------------------------------------------------------------------- channel runs

def candidates_table(ids: IdMap, users: np.ndarray, items: np.ndarray, scores: np.ndarray):
    """Long Arrow table (user_id, movie_id, rank, score) in RAW ids from index-space top-k arrays."""
    import pyarrow as pa

    valid = items >= 0
    rows, cols = np.nonzero(valid)
    return pa.table({
        "user_id": pa.array(ids.user_raw(np.asarray(users))[rows].astype(np.int32)),
        "movie_id": pa.array(ids.item_raw(items[valid]).astype(np.int32)),
        "rank": pa.array((cols + 1).astype(np.int32)),
        "score": pa.array(np.asarray(scores, dtype=np.float32)[valid]),
    })


def write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_channel_candidates(paths: RecallPaths, protocol: str, channel: str, split: Split, model: BaseRecall,
                             k: int = CANDIDATES_PER_CHANNEL, stage: str = "test") -> dict[str, float]:
    """Batch-recommend `k` items to every evaluated user of `split` (its target rows), write them as the
    candidates of `stage`; returns row count and users/s."""
    users = split.test_user_index
    start = time.perf_counter()
    parts = [model.recommend(users[s : s + RECOMMEND_BATCH], k) for s in range(0, users.size, RECOMMEND_BATCH)]
    seconds = time.perf_counter() - start
    items = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, k), np.int32)
    scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, k), np.float32)
    table = candidates_table(split.ids, users, items, scores)
    write_parquet(table, paths.candidates(protocol, channel, stage))
    return {"rows": table.num_rows, "users_per_s": round(users.size / seconds, 1) if seconds else 0.0}


ChannelFactory = Callable[[], BaseRecall] | Callable[[Split], BaseRecall]
"""A channel factory: `make()` or, when it has a required positional parameter, `make(split)` (side inputs
aligned with the protocol's IdMap, e.g. item embeddings, are built from the split)."""


def takes_split(make: ChannelFactory) -> TypeIs[Callable[[Split], BaseRecall]]:
    """True when `make` has a required positional parameter (a class whose parameters all have defaults,
    such as `PopularityRecall`, is called with no argument)."""
    try:
        params = inspect.signature(make).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is inspect.Parameter.empty
               and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for p in params)


def training_curve(model: BaseRecall) -> dict[str, Any] | None:
    """`model.training_log_` (loss per epoch, train seconds, device, …) when the channel has one."""
    log = getattr(model, "training_log_", None)
    if not log:
        return None
    out = dict(log)
    losses = [float(x) for x in out.get("loss_per_epoch", [])]
    out["loss_per_epoch"] = [round(x, 6) for x in losses]
    if losses:
        out["final_loss"] = round(losses[-1], 6)
    return out


@dataclass
class ChannelRunStats:
    """What `run_channels` did, keyed by `<stage>/<channel>` (`<stage>`: `<protocol>` or `<protocol>/window`).

    `stats`: {"fit_s", "rows", "users_per_s", "users"} per stage and channel (+ "shared_fit": True where the
    stage reused the fit of a stage with the same training file); `curves`: the training curve
    (`training_curve`) of each fit whose model has a `training_log_`."""

    stats: dict[str, dict] = field(default_factory=dict)
    curves: dict[str, dict] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Candidate rows written, over every stage and channel."""
        return sum(s["rows"] for s in self.stats.values())


def _check_channel_names(names) -> None:
    names = list(names)
    if not names:
        raise ValueError("no channel to run")
    for name in names:
        if not isinstance(name, str) or not _CHANNEL_NAME.match(name) or name == MERGED or \
                name.startswith(f"{MERGED}_"):
            raise ValueError(f"bad channel name {name!r}: lower-case [a-z0-9_], not {MERGED!r} or {MERGED}_*")


def run_channels(paths: RecallPaths, channels: Mapping[str, ChannelFactory], con: duckdb.DuckDBPyConnection, *,
                 progress: Progress | None = None) -> ChannelRunStats:
    """Fit each channel on every stage of every protocol, save it, write its candidates for the stage's users.

    Stages that share a training file (global_time's test and window) share one fit. A factory is called as
    `make(split)` when it takes a required positional parameter, else `make()`. Models go to
    `paths.model(protocol, channel, stage)`, candidates to `paths.candidates(...)`."""
    _check_channel_names(channels)
    say = progress or _quiet
    run = ChannelRunStats()
    stats, curves = run.stats, run.curves
    for protocol in PROTOCOLS:
        fitted: dict[str, BaseRecall] = {}
        split: Split | None = None
        fit_dir: Path | None = None
        for stage in paths.stages(protocol):
            if split is not None and fit_dir == stage.fit_dir:
                split = with_target(con, split, stage.fit_dir, stage.target)  # same fit, other users
            else:
                split, fitted = None, {}  # release the previous stage's data before loading the next
                split, fit_dir = load_stage(con, stage), stage.fit_dir
            for name, make in channels.items():
                model = fitted.get(name)
                if model is None:
                    start = time.perf_counter()
                    model = (make(split) if takes_split(make) else make()).fit(split.train)
                    fit_s = time.perf_counter() - start
                    model.save(paths.model(protocol, name, stage.name))
                    fitted[name] = model
                    stats[f"{stage.key}/{name}"] = {"fit_s": round(fit_s, 2)}
                    curve = training_curve(model)
                    if curve is not None:
                        curves[f"{stage.key}/{name}"] = curve
                        say(f"{name} [{stage.key}]: loss per epoch {curve['loss_per_epoch']} "
                            f"({curve.get('train_seconds')}s on {curve.get('device')}, "
                            f"{curve.get('examples_per_s', 0):,.0f} examples/s)")
                out = write_channel_candidates(paths, protocol, name, split, model, stage=stage.name)
                entry = stats.setdefault(f"{stage.key}/{name}", {"fit_s": 0.0, "shared_fit": True})
                entry.update(out, users=int(split.test_users.size))
                say(f"{name} [{stage.key}]: fit {entry['fit_s']:.1f}s, {out['rows']:,} candidates "
                    f"for {split.test_users.size:,} users ({out['users_per_s']:,.0f} users/s)")
    return run


# ------------------------------------------------------------------------------------------------- merge

@dataclass(frozen=True)
class MergeParams:
    """How `merge_channels` merges (the defaults of the `recall_candidates` asset's run config)."""

    size: int = 200
    rrf_k: float = 60.0
    tune_weights: bool = True
    """Tune the RRF channel weights of each protocol on its window stage (window Recall@100, significant moves
    only; never on test rows) and merge both stages with them; False: equal weights."""
    tune_users: int = 10_000
    """At most this many window users (a seeded sample) score the weight trials."""
    z: float = 2.0
    """A move away from the current weights needs a gain above z paired standard errors over users."""


def tune_merge_weights(paths: RecallPaths, protocol: str, con: duckdb.DuckDBPyConnection,
                       params: MergeParams | None = None, *, channels: tuple[str, ...] = RECALL_CHANNELS,
                       progress: Progress | None = None) -> dict[str, Any]:
    """{"weights": {channel: w} or None (equal), ...} from the channels' window candidates of `protocol`."""
    import pyarrow.parquet as pq

    from movielens_assets.core.recall.merge import RankMatrix, tune_rrf_weights

    params = params or MergeParams()
    say = progress or _quiet
    window = paths.stages(protocol)[1]
    if not params.tune_weights:
        return {"weights": None, "note": "tune_weights=False: equal weights"}
    present = {c: paths.candidates(protocol, c, WINDOW) for c in channels}
    present = {c: p for c, p in present.items() if p.exists()}
    if len(present) < 2:
        return {"weights": None, "note": f"fewer than 2 channels have {protocol}/window candidates: equal weights"}
    users, target_users, target_items, _ = load_targets(con, window)
    if users.size == 0:
        return {"weights": None, "note": f"no {protocol} window user is known in its train: equal weights"}
    if users.size > params.tune_users:
        users = np.sort(np.random.default_rng(0).choice(users, size=params.tune_users, replace=False))
    tables = {c: pq.read_table(p, columns=["user_id", "movie_id", "rank"]) for c, p in present.items()}
    start = time.perf_counter()
    tuned = tune_rrf_weights(RankMatrix.build(tables, users, target_users, target_items), rrf_k=params.rrf_k,
                             z=params.z)
    single = ", ".join(f"{c} {m['recall@100']:.4f}" for c, m in tuned["single"].items())
    say(f"[{protocol}] merge weights tuned on {tuned['users']:,} window users in "
        f"{time.perf_counter() - start:.1f}s: {tuned['weights']} -> window Recall@100 "
        f"{tuned['recall@100']:.4f} (equal weights {tuned['equal']['recall@100']:.4f}; alone: {single})")
    return {**tuned, "tuned_on": f"{protocol}/window"}


@dataclass
class MergeRunStats:
    """What `merge_channels` did.

    `stats`: {"rows", "channels"} per `<stage>/<merged name>` (`merged`, and `merged_quota` for the test
    stage); `weights`: per protocol, the tuning written to `merge_weights.json` without its trace;
    `missing`: per `<protocol>/<stage>`, the channels that had no candidate file (merged without them)."""

    stats: dict[str, dict] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)


def merge_channels(paths: RecallPaths, con: duckdb.DuckDBPyConnection, params: MergeParams | None = None, *,
                   channels: tuple[str, ...] = RECALL_CHANNELS, progress: Progress | None = None,
                   warn: Progress | None = None) -> MergeRunStats:
    """Per protocol: tune the RRF weights on the window stage (`tune_merge_weights`) and write them to
    `paths.merge_weights(protocol)`; per stage: merge the lists of the `channels` that have a candidate file
    (RRF with the tuned weights -> `merged`; for the test stage also each other method of
    `core.recall.merge.METHODS` with equal weights -> `merged_<method>`), a chunk of users at a time."""
    from movielens_assets.core.data.atomic import atomic_write_text
    from movielens_assets.core.recall.merge import METHODS, merge_candidate_files

    params = params or MergeParams()
    say = progress or _quiet
    caution = warn or say
    run = MergeRunStats()
    stats, weights_by_protocol = run.stats, run.weights
    for protocol in PROTOCOLS:
        tuning = tune_merge_weights(paths, protocol, con, params, channels=channels, progress=say)
        atomic_write_text(paths.merge_weights(protocol), json.dumps(tuning, indent=2))
        weights_by_protocol[protocol] = {k: v for k, v in tuning.items() if k != "trace"}
        for stage in (s.name for s in paths.stages(protocol)):
            present = {c: paths.candidates(protocol, c, stage) for c in channels
                       if paths.candidates(protocol, c, stage).exists()}
            missing = sorted(set(channels) - set(present))
            if missing:
                run.missing[f"{protocol}/{stage}"] = missing
                caution(f"[{protocol}/{stage}] no candidates yet for {missing}: merged without them")
            if not present:
                continue
            for method in METHODS if stage == "test" else (MERGE_DEFAULT,):
                name = MERGED if method == MERGE_DEFAULT else f"{MERGED}_{method}"
                weights = tuning["weights"] if method == MERGE_DEFAULT else None
                start = time.perf_counter()
                rows = merge_candidate_files(present, paths.candidates(protocol, name, stage), method=method,
                                             size=params.size, rrf_k=params.rrf_k, weights=weights, con=con)
                key = protocol if stage == "test" else f"{protocol}/{stage}"
                say(f"{name} [{key}]: {rows:,} candidates in {time.perf_counter() - start:.1f}s")
                stats[f"{key}/{name}"] = {"rows": rows, "channels": list(present)}
    return run


# -------------------------------------------------------------------------------------------- evaluation

def merged_list_names(stage: str) -> tuple[str, ...]:
    """The merged lists `merge_channels` writes for `stage`: `merged` (RRF with the tuned weights) and, for the
    test stage, `merged_<method>` for every other method of `core.recall.merge.METHODS` (equal weights)."""
    from movielens_assets.core.recall.merge import METHODS

    others = tuple(f"{MERGED}_{m}" for m in METHODS if m != MERGE_DEFAULT) if stage == "test" else ()
    return (MERGED, *others)


def evaluated_channels(paths: RecallPaths, protocol: str) -> list[str]:
    """Known channels whose candidate file exists (a stale file of an unknown name is ignored)."""
    merged = merged_list_names("test")
    return [c for c in (*RECALL_CHANNELS, *EXTRA_CHANNELS, *merged) if paths.candidates(protocol, c).exists()]


def evaluate_channels(paths: RecallPaths, con: duckdb.DuckDBPyConnection, *, dataset: str, n_boot: int = 1000,
                      seed: int = 0) -> dict:
    """HR / Recall / NDCG @ `core.evaluation.metrics.KS` (+ bootstrap 95% CI), coverage and popularity of every
    evaluated channel (`evaluated_channels`) over ALL test users of each protocol, with the protocol's merge
    weights when written: the report of `metrics/recall.json`."""
    import pyarrow.parquet as pq

    from movielens_assets.core.evaluation.metrics import KS, evaluate, rec_matrix_from_ranks

    report: dict = {"dataset": dataset, "relevance": "any test interaction; *_liked: rating >= 4",
                    "ks": list(KS), "candidates_per_channel": CANDIDATES_PER_CHANNEL, "protocols": {}}
    for protocol in PROTOCOLS:
        split = load_stage(con, paths.stages(protocol)[0])
        popularity = (split.ids.item_ids, split.item_popularity())
        channels: dict[str, dict] = {}
        for channel in evaluated_channels(paths, protocol):
            cand = pq.read_table(paths.candidates(protocol, channel), columns=["user_id", "movie_id", "rank"])
            rec = rec_matrix_from_ranks(split.test_users, cand["user_id"].to_numpy().astype(np.int64),
                                        cand["movie_id"].to_numpy().astype(np.int64),
                                        cand["rank"].to_numpy(), max(KS))
            channels[channel] = evaluate(
                rec, split.test_users, split.test_user_ids, split.test_movie_ids, split.test_ratings,
                item_popularity=popularity, n_catalogue=split.ids.n_items, n_boot=n_boot, seed=seed,
            )
        report["protocols"][protocol] = {"users": int(split.test_users.size), "channels": channels}
        if paths.merge_weights(protocol).exists():
            tuning = json.loads(paths.merge_weights(protocol).read_text())
            report["protocols"][protocol]["merge"] = {"method": MERGE_DEFAULT,
                                                      **{k: v for k, v in tuning.items() if k != "trace"}}
    return report
