"""Group `recall`: splits -> one asset per recall channel -> merged candidates -> metrics.

Adding a channel (two_tower, semantic, …) = one asset that calls `run_channel(...)` (or writes the
same files with `write_channel_candidates`) and its name in `RECALL_CHANNELS`: `recall_candidates`
merges, and `recall_metrics` evaluates, every channel whose candidate file exists.

Every channel runs in two stages per protocol (docs/RANKING.md): `test` (fit on train, candidates for the
test users) and `window` (fit on train minus the window, candidates for the window users: merge tuning and
the ranker's training candidates). Files (`<data>/recall/`):
  splits/<protocol>/{train,test}.parquet (+ valid for global_time), splits/<protocol>/ids/  (the IdMap),
  splits/last_n/window/{train,valid}.parquet + ids/                (last_n's window stage)
  candidates/<protocol>/<channel>.parquet          user_id, movie_id, rank (1-based), score — test users
  candidates/<protocol>/window/<channel>.parquet   the same for the window users
  candidates/<protocol>/[window/]merged.parquet    + channels, channel_ranks, rank_<channel>, score_<channel>
  candidates/<protocol>/merge_weights.json         the RRF weights tuned on the protocol's window
and `<data>/models/recall/<protocol>/[window/]<channel>/` (fitted channels), `<data>/metrics/recall.{json,md}`.
"""

import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np

from movielens_assets.assets import ingest
from movielens_assets.assets._metadata import markdown_table
from movielens_assets.core.evaluation.splits import (
    PROTOCOLS,
    WINDOW,
    Split,
    Stage,
    load_stage,
    load_targets,
    protocol_stages,
    with_target,
    write_splits,
)
from movielens_assets.core.recall.base import BaseRecall, IdMap
from movielens_assets.core.recall.itemcf import ItemCFParams
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import TypeIs

GROUP = "recall"
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
TABLE_KS = (20, 100)


def splits_dir(lake: DataLake) -> Path:
    return lake.recall_dir / "splits"


def stages(lake: DataLake, protocol: str) -> tuple[Stage, Stage]:
    """The (test, window) stages of `protocol` in this lake."""
    return protocol_stages(splits_dir(lake), protocol)


def candidates_path(lake: DataLake, protocol: str, channel: str, stage: str = "test") -> Path:
    """Candidates of `channel` for the users of `stage` ("test", or "window": the window users)."""
    base = lake.recall_dir / "candidates" / protocol
    return (base if stage == "test" else base / stage) / f"{channel}.parquet"


def model_dir(lake: DataLake, protocol: str, channel: str, stage: str = "test") -> Path:
    base = lake.models_dir / "recall" / protocol
    return (base if stage == "test" else base / stage) / channel


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


def write_channel_candidates(lake: DataLake, protocol: str, channel: str, split: Split, model: BaseRecall,
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
    write_parquet(table, candidates_path(lake, protocol, channel, stage))
    return {"rows": table.num_rows, "users_per_s": round(users.size / seconds, 1) if seconds else 0.0}


ChannelFactory = Callable[[], BaseRecall] | Callable[[Split], BaseRecall]
"""A channel factory: `make()` or, when it has a required positional parameter, `make(split)` (side inputs
aligned with the protocol's IdMap, e.g. item embeddings, are built from the split)."""


def _takes_split(make: ChannelFactory) -> "TypeIs[Callable[[Split], BaseRecall]]":
    """True when `make` has a required positional parameter (a class whose parameters all have defaults,
    such as `PopularityRecall`, is called with no argument)."""
    try:
        params = inspect.signature(make).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is inspect.Parameter.empty
               and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for p in params)


def _training_curve(model: BaseRecall) -> dict[str, Any] | None:
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


def run_channel(context: dg.AssetExecutionContext, lake: DataLake, channels: dict[str, ChannelFactory]
                ) -> dg.MaterializeResult:
    """Fit each channel on every stage of every protocol, save it, write its candidates for the stage's users.

    Stages that share a training file (global_time's test and window) share one fit. A factory is called as
    `make(split)` when it takes a required positional parameter, else `make()`. When a fitted model has a
    `training_log_` (e.g. two_tower), its training curve goes into the metadata:
    `<stage>/<channel>/loss_per_epoch` (JSON), `.../final_loss`, `.../train_seconds`, `.../device`, where
    `<stage>` is `<protocol>` or `<protocol>/window`."""
    stats: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    with lake.duckdb() as con:
        for protocol in PROTOCOLS:
            fitted: dict[str, BaseRecall] = {}
            split: Split | None = None
            fit_dir: Path | None = None
            for stage in stages(lake, protocol):
                if split is not None and fit_dir == stage.fit_dir:
                    split = with_target(con, split, stage.fit_dir, stage.target)  # same fit, other users
                else:
                    split, fitted = None, {}  # release the previous stage's data before loading the next
                    split, fit_dir = load_stage(con, stage), stage.fit_dir
                for name, make in channels.items():
                    model = fitted.get(name)
                    if model is None:
                        start = time.perf_counter()
                        model = (make(split) if _takes_split(make) else make()).fit(split.train)
                        fit_s = time.perf_counter() - start
                        model.save(model_dir(lake, protocol, name, stage.name))
                        fitted[name] = model
                        stats[f"{stage.key}/{name}"] = {"fit_s": round(fit_s, 2)}
                        curve = _training_curve(model)
                        if curve is not None:
                            curves[f"{stage.key}/{name}"] = curve
                            context.log.info(f"{name} [{stage.key}]: loss per epoch {curve['loss_per_epoch']} "
                                             f"({curve.get('train_seconds')}s on {curve.get('device')}, "
                                             f"{curve.get('examples_per_s', 0):,.0f} examples/s)")
                    out = write_channel_candidates(lake, protocol, name, split, model, stage=stage.name)
                    entry = stats.setdefault(f"{stage.key}/{name}", {"fit_s": 0.0, "shared_fit": True})
                    entry.update(out, users=int(split.test_users.size))
                    context.log.info(f"{name} [{stage.key}]: fit {entry['fit_s']:.1f}s, {out['rows']:,} candidates "
                                     f"for {split.test_users.size:,} users ({out['users_per_s']:,.0f} users/s)")
    first = next(iter(channels))
    metadata: dict[str, Any] = {
        "stats": dg.MetadataValue.json(stats),
        "dagster/row_count": sum(s["rows"] for s in stats.values()),
        "path": dg.MetadataValue.path(str(candidates_path(lake, PROTOCOLS[0], first))),
    }
    for key, curve in curves.items():
        metadata[f"{key}/loss_per_epoch"] = dg.MetadataValue.json(curve["loss_per_epoch"])
        if "final_loss" in curve:
            metadata[f"{key}/final_loss"] = float(curve["final_loss"])
        if "train_seconds" in curve:
            metadata[f"{key}/train_seconds"] = float(curve["train_seconds"])
        if "examples_per_s" in curve:
            metadata[f"{key}/examples_per_s"] = float(curve["examples_per_s"])
        if "device" in curve:
            metadata[f"{key}/device"] = str(curve["device"])
    if curves:
        metadata["training_log"] = dg.MetadataValue.json(curves)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name=GROUP, deps=[ingest.ratings], kinds={"duckdb", "parquet"})
def splits(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Train / test per protocol: `last_n` (each user's last 3 interactions) and `global_time`
    (80/10/10 global time cut), with the IdMap of each protocol built from its train file; and the window
    stage of each protocol (last_n: each user's last 3 train rows, `last_n/window/`; global_time: valid)."""
    with lake.duckdb() as con:
        counts = write_splits(con, lake.processed("ratings"), splits_dir(lake))
    for protocol, c in counts.items():
        context.log.info(f"{protocol}: {c}")
    return dg.MaterializeResult(metadata={
        "counts": dg.MetadataValue.json(counts),
        "last_n_test_users": counts["last_n"]["test_users"],
        "last_n_window_users": counts["last_n"]["window_users"],
        "global_time_test_users": counts["global_time"]["test_users"],
        "path": dg.MetadataValue.path(str(splits_dir(lake))),
    })


class PopularityConfig(dg.Config):
    recent_window_days: float = 90.0
    """Window (before the last training timestamp) of the `popularity_recent` variant."""


@dg.asset(group_name=GROUP, deps=[splits], kinds={"numpy", "parquet"})
def popularity_recall(context: dg.AssetExecutionContext, config: PopularityConfig, lake: DataLake
                      ) -> dg.MaterializeResult:
    """Most popular unseen items: overall (`popularity`) and within a recent window (`popularity_recent`)."""
    from movielens_assets.core.recall.popularity import PopularityRecall

    return run_channel(context, lake, {
        "popularity": PopularityRecall,
        "popularity_recent": lambda: PopularityRecall(window_days=config.recent_window_days),
    })


class ItemCFConfig(dg.Config):
    """Run config of `itemcf_recall`; the defaults are those of `core.recall.itemcf.ItemCFParams`."""

    max_history: int = ItemCFParams.max_history
    window: int = ItemCFParams.window
    time_decay_days: float | None = ItemCFParams.time_decay_days
    n_neighbors: int = ItemCFParams.n_neighbors
    n_recent: int = ItemCFParams.n_recent
    recency: float = ItemCFParams.recency


@dg.asset(group_name=GROUP, deps=[splits], kinds={"numpy", "parquet"})
def itemcf_recall(context: dg.AssetExecutionContext, config: ItemCFConfig, lake: DataLake) -> dg.MaterializeResult:
    """Item-item co-occurrence (inverse user activity, truncated histories, time decay), top-N neighbours."""
    from movielens_assets.core.recall.itemcf import ItemCFRecall

    params = ItemCFParams(**config.model_dump())
    return run_channel(context, lake, {"itemcf": lambda: ItemCFRecall(params)})


def stored_item_embeddings(lake: DataLake) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The current item embeddings — the vectors of the model recorded in the store's manifest (written by
    the last `item_embeddings` run) for the current item texts — or None when none are stored."""
    from movielens_assets.assets.features import features_dir
    from movielens_assets.core.text.store import load_item_embeddings

    try:
        movie_ids, vectors, manifest = load_item_embeddings(features_dir(lake))
    except FileNotFoundError:
        return None
    if not len(movie_ids):
        return None
    return movie_ids, vectors, manifest


class TwoTowerAssetConfig(dg.Config):
    """Run config of `two_tower_recall` (defaults sized for synthetic-small on a 2-core CPU: ~30 s per protocol,
    last_n Recall@20 0.49 vs 0.446 for ItemCF; measurements in `core.recall.two_tower`)."""

    epochs: int = 3
    dim: int = 64
    hidden: int = 128
    history_len: int = 20
    batch_size: int = 512
    temperature: float = 0.05
    lr: float = 3e-3
    pooling: str = "mean_recency"
    """User-tower pooling of the history: "mean", or "mean_recency" (+ a learned recency-weighted mean)."""
    user_weight_power: float = 0.5
    """Loss weight n_u ** -power per training example (n_u: its user's training interactions); 0 = uniform."""
    max_examples_per_epoch: int | None = None
    """Train each epoch on a fresh uniform sample of this many interactions (None: all). On a 2-core CPU at 32M
    ratings an epoch over all 31M interactions takes ~40 min (~14k examples/s, docs/BENCHMARKS.md);
    e.g. 2_000_000 bounds it to ~2.5 min per epoch."""
    sparse_embeddings: bool = True
    """Id embedding tables with sparse gradients (SparseAdam): a step updates only its batch's rows (9x faster
    than dense Adam at 32M ratings on a CPU, same loss). False: dense Adam over the whole tables."""
    num_threads: int | None = 1
    """torch intra-op threads during fit (1: measured fastest on a shared 2-core box; None: torch's setting)."""
    use_item_embeddings: bool = True
    """Feed the stored item embeddings to the item tower when there are any (soft: trains without them)."""
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[splits, ingest.movies, "item_embeddings"], kinds={"pytorch", "faiss", "parquet"})
def two_tower_recall(context: dg.AssetExecutionContext, config: TwoTowerAssetConfig, lake: DataLake,
                     torch_device: TorchDevice) -> dg.MaterializeResult:
    """Two-tower retrieval (in-batch softmax, logQ correction) with genre / year side features and, when
    the embedding store has vectors for the current model, the items' semantic embeddings."""
    import pyarrow.parquet as pq

    from movielens_assets.core.recall.semantic import align_embeddings
    from movielens_assets.core.recall.two_tower import TwoTowerConfig, TwoTowerRecall, item_features_from_movies

    device = torch_device.resolve()
    tt_config = TwoTowerConfig(dim=config.dim, hidden=config.hidden, history_len=config.history_len,
                               epochs=config.epochs, batch_size=config.batch_size, temperature=config.temperature,
                               lr=config.lr, num_threads=config.num_threads, seed=config.seed, pooling=config.pooling,
                               user_weight_power=config.user_weight_power,
                               max_examples_per_epoch=config.max_examples_per_epoch,
                               sparse_embeddings=config.sparse_embeddings)
    movies = pq.read_table(lake.processed("movies"), columns=["movie_id", "year", "genres"])
    movie_ids = movies.column("movie_id").to_numpy().astype(np.int64)
    years, genres = movies.column("year").to_pylist(), movies.column("genres").to_pylist()
    embeddings = stored_item_embeddings(lake) if config.use_item_embeddings else None
    if embeddings is None:
        context.log.info("two_tower: no stored item embeddings used: the item tower uses ids, genres, year, popularity")
    else:
        context.log.info(f"two_tower: item embeddings of {embeddings[2].get('model')} "
                         f"({embeddings[1].shape[1]}-d, {len(embeddings[0]):,} movies)")

    def make(split: Split) -> TwoTowerRecall:
        multi_hot, item_years, _vocab = item_features_from_movies(split.ids, movie_ids, years, genres)
        emb = mask = None
        if embeddings is not None:
            emb, mask = align_embeddings(split.ids, embeddings[0], embeddings[1])
        return TwoTowerRecall(tt_config, item_genres=multi_hot, item_years=item_years, item_embeddings=emb,
                              item_embedding_mask=mask, device=device)

    result = run_channel(context, lake, {"two_tower": make})
    metadata = dict(result.metadata or {})
    metadata.update({"device": device, "config": dg.MetadataValue.json(tt_config.to_dict()),
                     "item_embeddings": embeddings[2].get("model") if embeddings is not None else "none"})
    return dg.MaterializeResult(metadata=metadata)


class SemanticAssetConfig(dg.Config):
    recent: int = 20
    recency_decay: float = 0.85
    neighbours: int = 100


@dg.asset(group_name=GROUP, deps=[splits, "item_embeddings"], kinds={"faiss", "parquet"})
def semantic_recall(context: dg.AssetExecutionContext, config: SemanticAssetConfig, lake: DataLake
                    ) -> dg.MaterializeResult:
    """Nearest neighbours, in the item-embedding space, of each user's recent items (cold items included)."""
    from movielens_assets.core.recall.semantic import SemanticConfig, SemanticRecall, align_embeddings

    embeddings = stored_item_embeddings(lake)
    if embeddings is None:
        raise dg.Failure(description=(
            "semantic_recall: no item embeddings are stored (features/item_embeddings/ has no manifest or no "
            "vector for the current item texts): materialize `item_text` and `item_embeddings` first"))
    movie_ids, vectors, manifest = embeddings
    sem_config = SemanticConfig(recent=config.recent, recency_decay=config.recency_decay,
                                neighbours=config.neighbours)
    context.log.info(f"semantic: {manifest.get('model')} ({vectors.shape[1]}-d, {len(movie_ids):,} movies)")

    def make(split: Split) -> SemanticRecall:
        emb, has = align_embeddings(split.ids, movie_ids, vectors)
        return SemanticRecall(emb, has, sem_config)

    result = run_channel(context, lake, {"semantic": make})
    metadata = dict(result.metadata or {})
    metadata.update({"model": str(manifest.get("model")), "dim": int(vectors.shape[1]),
                     "embedded_movies": len(movie_ids)})
    return dg.MaterializeResult(metadata=metadata)


class MergeConfig(dg.Config):
    size: int = 200
    rrf_k: float = 60.0
    tune_weights: bool = True
    """Tune the RRF channel weights of each protocol on its window stage (window Recall@100, significant moves
    only; never on test rows) and merge both stages with them; False: equal weights."""
    tune_users: int = 10_000
    """At most this many window users (a seeded sample) score the weight trials."""
    z: float = 2.0
    """A move away from the current weights needs a gain above z paired standard errors over users."""


def merge_weights_path(lake: DataLake, protocol: str) -> Path:
    return lake.recall_dir / "candidates" / protocol / "merge_weights.json"


def _tuned_weights(context: dg.AssetExecutionContext, lake: DataLake, config: MergeConfig, protocol: str,
                   con) -> dict[str, Any]:
    """{"weights": {channel: w} or None (equal), ...} from the channels' window candidates of `protocol`."""
    import pyarrow.parquet as pq

    from movielens_assets.core.recall.merge import RankMatrix, tune_rrf_weights

    window = stages(lake, protocol)[1]
    if not config.tune_weights:
        return {"weights": None, "note": "tune_weights=False: equal weights"}
    present = {c: candidates_path(lake, protocol, c, WINDOW) for c in RECALL_CHANNELS}
    present = {c: p for c, p in present.items() if p.exists()}
    if len(present) < 2:
        return {"weights": None, "note": f"fewer than 2 channels have {protocol}/window candidates: equal weights"}
    users, target_users, target_items, _ = load_targets(con, window)
    if users.size == 0:
        return {"weights": None, "note": f"no {protocol} window user is known in its train: equal weights"}
    if users.size > config.tune_users:
        users = np.sort(np.random.default_rng(0).choice(users, size=config.tune_users, replace=False))
    tables = {c: pq.read_table(p, columns=["user_id", "movie_id", "rank"]) for c, p in present.items()}
    start = time.perf_counter()
    tuned = tune_rrf_weights(RankMatrix.build(tables, users, target_users, target_items), rrf_k=config.rrf_k,
                             z=config.z)
    single = ", ".join(f"{c} {m['recall@100']:.4f}" for c, m in tuned["single"].items())
    context.log.info(f"[{protocol}] merge weights tuned on {tuned['users']:,} window users in "
                     f"{time.perf_counter() - start:.1f}s: {tuned['weights']} -> window Recall@100 "
                     f"{tuned['recall@100']:.4f} (equal weights {tuned['equal']['recall@100']:.4f}; alone: {single})")
    return {**tuned, "tuned_on": f"{protocol}/window"}


@dg.asset(group_name=GROUP, deps=[f"{c}_recall" for c in RECALL_CHANNELS], kinds={"duckdb", "parquet"})
def recall_candidates(context: dg.AssetExecutionContext, config: MergeConfig, lake: DataLake) -> dg.MaterializeResult:
    """Per user of each stage: the channels' lists merged (RRF with channel weights tuned on the protocol's
    window; an equal-weight quota merge beside it for the test users), de-duplicated, with every channel's
    rank and score."""
    from movielens_assets.core.data.atomic import atomic_write_text
    from movielens_assets.core.recall.merge import METHODS, merge_candidate_files

    stats: dict[str, dict] = {}
    weights_by_protocol: dict[str, Any] = {}
    # the lake's memory bound and spill directory; merges go a chunk of users at a time (bounded at any scale)
    with lake.duckdb() as con:
        for protocol in PROTOCOLS:
            tuning = _tuned_weights(context, lake, config, protocol, con)
            atomic_write_text(merge_weights_path(lake, protocol), json.dumps(tuning, indent=2))
            weights_by_protocol[protocol] = {k: v for k, v in tuning.items() if k != "trace"}
            for stage in (s.name for s in stages(lake, protocol)):
                present = {c: candidates_path(lake, protocol, c, stage) for c in RECALL_CHANNELS
                           if candidates_path(lake, protocol, c, stage).exists()}
                missing = sorted(set(RECALL_CHANNELS) - set(present))
                if missing:
                    context.log.warning(f"[{protocol}/{stage}] no candidates yet for {missing}: merged without them")
                if not present:
                    continue
                for method in METHODS if stage == "test" else (MERGE_DEFAULT,):
                    name = MERGED if method == MERGE_DEFAULT else f"{MERGED}_{method}"
                    weights = tuning["weights"] if method == MERGE_DEFAULT else None
                    start = time.perf_counter()
                    rows = merge_candidate_files(present, candidates_path(lake, protocol, name, stage), method=method,
                                                 size=config.size, rrf_k=config.rrf_k, weights=weights, con=con)
                    key = protocol if stage == "test" else f"{protocol}/{stage}"
                    context.log.info(f"{name} [{key}]: {rows:,} candidates in {time.perf_counter() - start:.1f}s")
                    stats[f"{key}/{name}"] = {"rows": rows, "channels": list(present)}
    return dg.MaterializeResult(metadata={
        "stats": dg.MetadataValue.json(stats),
        "method": MERGE_DEFAULT,
        "weights": dg.MetadataValue.json(weights_by_protocol),
        "dagster/row_count": stats[f"{PROTOCOLS[0]}/{MERGED}"]["rows"],
        "path": dg.MetadataValue.path(str(candidates_path(lake, PROTOCOLS[0], MERGED))),
    })


def _evaluated_channels(lake: DataLake, protocol: str) -> list[str]:
    """Known channels whose candidate file exists (a stale file of an unknown name is ignored)."""
    from movielens_assets.core.recall.merge import METHODS

    merged = [MERGED] + [f"{MERGED}_{m}" for m in METHODS if m != MERGE_DEFAULT]
    return [c for c in (*RECALL_CHANNELS, *EXTRA_CHANNELS, *merged) if candidates_path(lake, protocol, c).exists()]


def metrics_markdown(report: dict) -> str:
    cols = ["protocol", "channel", "users"]
    for k in TABLE_KS:
        cols += [f"HR@{k}", f"Recall@{k} [95% CI]", f"NDCG@{k}"]
    cols += ["Recall@20 (rating≥4)", "coverage@100", "avg pop@20"]
    rows = []
    for protocol, body in report["protocols"].items():
        for channel, m in body["channels"].items():
            row = [protocol, channel, m["users"]]
            for k in TABLE_KS:
                lo, hi = m[f"recall@{k}_ci"]
                row += [f"{m[f'hr@{k}']:.4f}", f"{m[f'recall@{k}']:.4f} [{lo:.4f}, {hi:.4f}]", f"{m[f'ndcg@{k}']:.4f}"]
            row += [f"{m['recall@20_liked']:.4f}", f"{m['coverage@100']:.4f}", f"{m['avg_popularity@20']:.1f}"]
            rows.append(tuple(row))
    return markdown_table(cols, rows)


class MetricsConfig(dg.Config):
    n_boot: int = 1000
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[recall_candidates], kinds={"numpy", "json"})
def recall_metrics(context: dg.AssetExecutionContext, config: MetricsConfig, lake: DataLake,
                   movielens: MovieLensSource) -> dg.MaterializeResult:
    """HR / Recall / NDCG @ 10, 20, 50, 100 (+ bootstrap 95% CI), coverage and popularity of every
    channel and the merged list, over ALL test users of both protocols -> `metrics/recall.json`."""
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_write_text
    from movielens_assets.core.evaluation.metrics import KS, evaluate, rec_matrix_from_ranks

    report: dict = {"dataset": movielens.dataset, "relevance": "any test interaction; *_liked: rating >= 4",
                    "ks": list(KS), "candidates_per_channel": CANDIDATES_PER_CHANNEL, "protocols": {}}
    with lake.duckdb() as con:
        for protocol in PROTOCOLS:
            split = load_stage(con, stages(lake, protocol)[0])
            popularity = (split.ids.item_ids, split.item_popularity())
            channels: dict[str, dict] = {}
            for channel in _evaluated_channels(lake, protocol):
                cand = pq.read_table(candidates_path(lake, protocol, channel), columns=["user_id", "movie_id", "rank"])
                rec = rec_matrix_from_ranks(split.test_users, cand["user_id"].to_numpy().astype(np.int64),
                                            cand["movie_id"].to_numpy().astype(np.int64),
                                            cand["rank"].to_numpy(), max(KS))
                channels[channel] = evaluate(
                    rec, split.test_users, split.test_user_ids, split.test_movie_ids, split.test_ratings,
                    item_popularity=popularity, n_catalogue=split.ids.n_items, n_boot=config.n_boot, seed=config.seed,
                )
            report["protocols"][protocol] = {"users": int(split.test_users.size), "channels": channels}
            if merge_weights_path(lake, protocol).exists():
                tuning = json.loads(merge_weights_path(lake, protocol).read_text())
                report["protocols"][protocol]["merge"] = {"method": MERGE_DEFAULT,
                                                          **{k: v for k, v in tuning.items() if k != "trace"}}
    table = metrics_markdown(report)
    path = lake.metrics_dir / "recall.json"
    atomic_write_text(path, json.dumps(report, indent=2))
    atomic_write_text(lake.metrics_dir / "recall.md", table)
    context.log.info(f"recall metrics ({movielens.dataset}) written to {path}\n{table}")
    metadata: dict = {"table": dg.MetadataValue.md(table), "path": dg.MetadataValue.path(str(path))}
    for protocol, body in report["protocols"].items():
        metadata[f"{protocol}_users"] = body["users"]
        for channel, m in body["channels"].items():
            metadata[f"{protocol}/{channel}/recall@20"] = round(m["recall@20"], 5)
    return dg.MaterializeResult(metadata=metadata)
