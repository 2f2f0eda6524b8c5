"""Group `recall`: splits -> one asset per recall channel -> merged candidates -> metrics.

Thin assets: the orchestration is `core.recall.runner` (`run_channels`, `merge_channels`,
`evaluate_channels`, plain Python returning stats objects); the assets read their inputs and run config,
open the lake's DuckDB connection, call it, and turn its stats into Dagster metadata.

Adding a channel (two_tower, semantic, …) = one asset that calls `run_channel(...)` (or writes the
same files with `core.recall.runner.write_channel_candidates`) and its name in `RECALL_CHANNELS`:
`recall_candidates` merges, and `recall_metrics` evaluates, every channel whose candidate file exists.

Every channel runs in two stages per protocol (docs/RANKING.md): `test` (fit on train, candidates for the
test users) and `window` (fit on train minus the window, candidates for the window users: merge tuning and
the ranker's training candidates). Files (`<data>/recall/`, `core.recall.runner.RecallPaths`):
  splits/<protocol>/{train,test}.parquet (+ valid for global_time), splits/<protocol>/ids/  (the IdMap),
  splits/last_n/window/{train,valid}.parquet + ids/                (last_n's window stage)
  candidates/<protocol>/<channel>.parquet          user_id, movie_id, rank (1-based), score — test users
  candidates/<protocol>/window/<channel>.parquet   the same for the window users
  candidates/<protocol>/[window/]merged.parquet    + channels, channel_ranks, rank_<channel>, score_<channel>
  candidates/<protocol>/merge_weights.json         the RRF weights tuned on the protocol's window
and `<data>/models/recall/<protocol>/[window/]<channel>/` (fitted channels), `<data>/metrics/recall.{json,md}`.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from movielens_assets.assets import ingest
from movielens_assets.assets._catalog import OWNERS, asset_tags
from movielens_assets.assets._compute import compute
from movielens_assets.assets._metadata import markdown_table, png_markdown
from movielens_assets.core.evaluation.splits import PROTOCOLS, Split, Stage, write_splits
from movielens_assets.core.recall.itemcf import ItemCFParams
from movielens_assets.core.recall.runner import (
    MERGE_DEFAULT,
    MERGED,
    RECALL_CHANNELS,
    ChannelFactory,
    ChannelRunStats,
    MergeParams,
    RecallPaths,
    evaluate_channels,
    merge_channels,
    run_channels,
)
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice

GROUP = "recall"
TABLE_KS = (20, 100)


def recall_paths(lake: DataLake) -> RecallPaths:
    """The recall group's file layout in this lake."""
    return RecallPaths(lake.recall_dir, lake.models_dir)


def splits_dir(lake: DataLake) -> Path:
    return recall_paths(lake).splits_dir


def stages(lake: DataLake, protocol: str) -> tuple[Stage, Stage]:
    """The (test, window) stages of `protocol` in this lake."""
    return recall_paths(lake).stages(protocol)


def candidates_path(lake: DataLake, protocol: str, channel: str, stage: str = "test") -> Path:
    """Candidates of `channel` for the users of `stage` ("test", or "window": the window users)."""
    return recall_paths(lake).candidates(protocol, channel, stage)


def model_dir(lake: DataLake, protocol: str, channel: str, stage: str = "test") -> Path:
    return recall_paths(lake).model(protocol, channel, stage)


def channel_metadata(lake: DataLake, run: ChannelRunStats, first: str) -> dict[str, Any]:
    """Dagster metadata of a channel run: the stats, the row count, the path of `first`'s test candidates of
    the first protocol and, per fit with a training curve, `<stage>/<channel>/loss_per_epoch` (JSON),
    `.../final_loss`, `.../train_seconds`, `.../examples_per_s`, `.../device` and `training_log` (all curves),
    where `<stage>` is `<protocol>` or `<protocol>/window`."""
    metadata: dict[str, Any] = {
        "stats": dg.MetadataValue.json(run.stats),
        "dagster/row_count": run.rows,
        "path": dg.MetadataValue.path(str(candidates_path(lake, PROTOCOLS[0], first))),
    }
    for key, curve in run.curves.items():
        metadata[f"{key}/loss_per_epoch"] = dg.MetadataValue.json(curve["loss_per_epoch"])
        if "final_loss" in curve:
            metadata[f"{key}/final_loss"] = float(curve["final_loss"])
        if "train_seconds" in curve:
            metadata[f"{key}/train_seconds"] = float(curve["train_seconds"])
        if "examples_per_s" in curve:
            metadata[f"{key}/examples_per_s"] = float(curve["examples_per_s"])
        if "device" in curve:
            metadata[f"{key}/device"] = str(curve["device"])
    if run.curves:
        metadata["training_log"] = dg.MetadataValue.json(run.curves)
    return metadata


def run_channel(context: dg.AssetExecutionContext, lake: DataLake, channels: dict[str, ChannelFactory],
                curve_plot: Path | None = None) -> dg.MaterializeResult:
    """`core.recall.runner.run_channels` on the lake's DuckDB connection, its stats as metadata
    (`channel_metadata`): each channel fitted on every stage of every protocol, saved, its candidates written
    for the stage's users. A factory is called as `make(split)` when it takes a required positional
    parameter, else `make()`. With `curve_plot`, the fits' loss curves are plotted there and shown inline
    (`training_curve_plot`: the path, `training_curve_chart`: the image)."""
    with lake.duckdb() as con:
        run = run_channels(recall_paths(lake), channels, con, progress=context.log.info)
    metadata = channel_metadata(lake, run, next(iter(channels)))
    if curve_plot is not None and run.curves:
        from movielens_assets.core.reports.curves import loss_curves_png

        loss_curves_png({key: curve["loss_per_epoch"] for key, curve in run.curves.items()}, curve_plot,
                        title=f"{', '.join(channels)}: training loss per epoch of each fit")
        metadata["training_curve_plot"] = dg.MetadataValue.path(str(curve_plot))
        metadata["training_curve_chart"] = png_markdown(curve_plot, "training loss per epoch")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name=GROUP, deps=[ingest.ratings], kinds={"duckdb", "parquet"}, owners=OWNERS,
          tags=asset_tags("data", "split"), **compute("splits"))
def splits(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The ratings split into what models learn from and what they are evaluated on, per protocol: `last_n`
    (each user's last 3 interactions are test) and `global_time` (80/10/10 global time cut) ->
    `<data>/recall/splits/<protocol>/{train,test}.parquet` (+ `valid.parquet` for global_time) and `ids/` (the
    protocol's IdMap, built from its train file); and the window stage of each protocol (last_n: each user's
    last 3 train rows, `<data>/recall/splits/last_n/window/{train,valid}.parquet`; global_time: valid)."""
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


@dg.asset(group_name=GROUP, deps=[splits], kinds={"numpy", "parquet"}, owners=OWNERS,
          tags=asset_tags("recall", "candidates"), **compute("popularity_recall"))
def popularity_recall(context: dg.AssetExecutionContext, config: PopularityConfig, lake: DataLake
                      ) -> dg.MaterializeResult:
    """Recall channel: the most popular items each user has not seen, overall (`popularity`) and within a recent
    window (`popularity_recent`), 200 per user of each stage ->
    `<data>/recall/candidates/<protocol>/popularity.parquet` and `popularity_recent.parquet` (test users),
    `.../<protocol>/window/...` (window users): user_id, movie_id, rank, score; the fitted channels in
    `<data>/models/recall/<protocol>/[window/]<channel>/`."""
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


@dg.asset(group_name=GROUP, deps=[splits], kinds={"numpy", "parquet"}, owners=OWNERS,
          tags=asset_tags("recall", "candidates"), **compute("itemcf_recall"))
def itemcf_recall(context: dg.AssetExecutionContext, config: ItemCFConfig, lake: DataLake) -> dg.MaterializeResult:
    """Recall channel: item-based collaborative filtering — items that co-occur with the user's recent items
    (inverse user activity, truncated histories, time decay, top-N neighbours), 200 unseen items per user of
    each stage -> `<data>/recall/candidates/<protocol>/itemcf.parquet` (test users) and
    `.../<protocol>/window/itemcf.parquet` (window users): user_id, movie_id, rank, score; the fitted neighbours
    in `<data>/models/recall/<protocol>/[window/]itemcf/`."""
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
    """Run config of `two_tower_recall` (defaults sized for synthetic-small on a 2-core CPU; its Recall beside
    ItemCF's: docs/EVALUATION.md, "Recall: every channel and the merged list"; the choices: `core.recall.two_tower`)."""

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
    ratings an epoch over all 31M interactions is the slow step; e.g. 2_000_000 bounds it (epoch times:
    docs/BENCHMARKS.md, "Recall", two-tower training throughput)."""
    sparse_embeddings: bool = True
    """Id embedding tables with sparse gradients (SparseAdam): a step updates only its batch's rows (faster than
    dense Adam at 32M ratings on a CPU, same loss: docs/BENCHMARKS.md, "Recall", two-tower training throughput).
    False: dense Adam over the whole tables."""
    num_threads: int | None = 1
    """torch intra-op threads during fit (1: measured fastest on a shared 2-core box; None: torch's setting)."""
    use_item_embeddings: bool = True
    """Feed the stored item embeddings to the item tower when there are any (soft: trains without them)."""
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[splits, ingest.movies, "item_embeddings"], kinds={"pytorch", "faiss", "parquet"},
          owners=OWNERS, tags=asset_tags("recall", "candidates"), **compute("two_tower_recall"))
def two_tower_recall(context: dg.AssetExecutionContext, config: TwoTowerAssetConfig, lake: DataLake,
                     torch_device: TorchDevice) -> dg.MaterializeResult:
    """Recall channel: a two-tower neural retriever (user tower over the history, item tower over id, genres,
    year and, when the embedding store has vectors for the current model, the semantic embedding; in-batch
    softmax with logQ correction), 200 unseen items per user of each stage from a faiss index ->
    `<data>/recall/candidates/<protocol>/two_tower.parquet` and `.../<protocol>/window/two_tower.parquet`; the
    model and index in `<data>/models/recall/<protocol>/[window/]two_tower/`; the loss curves plotted in
    `<data>/reports/two_tower_training_curve.png` (also in this asset's metadata)."""
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

    result = run_channel(context, lake, {"two_tower": make},
                         curve_plot=lake.reports_dir / "two_tower_training_curve.png")
    metadata = dict(result.metadata or {})
    metadata.update({"device": device, "config": dg.MetadataValue.json(tt_config.to_dict()),
                     "item_embeddings": embeddings[2].get("model") if embeddings is not None else "none"})
    return dg.MaterializeResult(metadata=metadata)


class SemanticAssetConfig(dg.Config):
    recent: int = 20
    recency_decay: float = 0.85
    neighbours: int = 100


@dg.asset(group_name=GROUP, deps=[splits, "item_embeddings"], kinds={"faiss", "parquet"}, owners=OWNERS,
          tags=asset_tags("recall", "candidates"), **compute("semantic_recall"))
def semantic_recall(context: dg.AssetExecutionContext, config: SemanticAssetConfig, lake: DataLake
                    ) -> dg.MaterializeResult:
    """Recall channel: nearest neighbours, in the text-embedding space (`item_embeddings`), of each user's recent
    items (cold items included), 200 unseen items per user of each stage ->
    `<data>/recall/candidates/<protocol>/semantic.parquet` and `.../<protocol>/window/semantic.parquet`; the
    index in `<data>/models/recall/<protocol>/[window/]semantic/`."""
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
    """Run config of `recall_candidates`; the defaults are those of `core.recall.runner.MergeParams`."""

    size: int = MergeParams.size
    rrf_k: float = MergeParams.rrf_k
    tune_weights: bool = MergeParams.tune_weights
    """Tune the RRF channel weights of each protocol on its window stage (window Recall@100, significant moves
    only; never on test rows) and merge both stages with them; False: equal weights."""
    tune_users: int = MergeParams.tune_users
    """At most this many window users (a seeded sample) score the weight trials."""
    z: float = MergeParams.z
    """A move away from the current weights needs a gain above z paired standard errors over users."""


def merge_weights_path(lake: DataLake, protocol: str) -> Path:
    return recall_paths(lake).merge_weights(protocol)


@dg.asset(group_name=GROUP, deps=[f"{c}_recall" for c in RECALL_CHANNELS], kinds={"duckdb", "parquet"},
          owners=OWNERS, tags=asset_tags("recall", "candidates"), **compute("recall_candidates"))
def recall_candidates(context: dg.AssetExecutionContext, config: MergeConfig, lake: DataLake) -> dg.MaterializeResult:
    """The candidates the ranker re-ranks: per user of each stage, the channels' lists merged (RRF with channel
    weights tuned on the protocol's window; an equal-weight quota merge beside it for the test users),
    de-duplicated, with every channel's rank and score (`core.recall.runner.merge_channels`) ->
    `<data>/recall/candidates/<protocol>/merged.parquet` (+ `merged_quota.parquet`),
    `.../<protocol>/window/merged.parquet` and the tuned weights in `.../<protocol>/merge_weights.json`."""
    # the lake's memory bound and spill directory; merges go a chunk of users at a time (bounded at any scale)
    with lake.duckdb() as con:
        run = merge_channels(recall_paths(lake), con, MergeParams(**config.model_dump()),
                             progress=context.log.info, warn=context.log.warning)
    return dg.MaterializeResult(metadata={
        "stats": dg.MetadataValue.json(run.stats),
        "method": MERGE_DEFAULT,
        "weights": dg.MetadataValue.json(run.weights),
        "dagster/row_count": run.stats[f"{PROTOCOLS[0]}/{MERGED}"]["rows"],
        "path": dg.MetadataValue.path(str(candidates_path(lake, PROTOCOLS[0], MERGED))),
    })


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


@dg.asset(group_name=GROUP, deps=[recall_candidates], kinds={"numpy", "json"}, owners=OWNERS,
          tags=asset_tags("evaluation", "metrics"), **compute("recall_metrics"))
def recall_metrics(context: dg.AssetExecutionContext, config: MetricsConfig, lake: DataLake,
                   movielens: MovieLensSource) -> dg.MaterializeResult:
    """HR / Recall / NDCG @ 10, 20, 50, 100 (+ bootstrap 95% CI), coverage and popularity of every
    channel and the merged list, over ALL test users of both protocols -> `<data>/metrics/recall.json` and
    `<data>/metrics/recall.md` (`core.recall.runner.evaluate_channels`; the table is this asset's `table`
    metadata)."""
    from movielens_assets.core.data.atomic import atomic_write_text

    with lake.duckdb() as con:
        report = evaluate_channels(recall_paths(lake), con, dataset=movielens.dataset, n_boot=config.n_boot,
                                   seed=config.seed)
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
