"""Group `ranking`: behaviour sequences and profiles (point-in-time) -> ranking samples, sharded by user.

Files (`<data>/ranking/`, docs/RANKING.md):
  sequences/<protocol>/*.npy                          user_sequences (the source rows as CSR by user)
  profiles/items/{items.parquet, semantic*.npy}       item_profile (static attributes, embeddings + PCA)
  profiles/<protocol>/{item_events,circulation}/      item_profile (point-in-time item index, rows by time)
  profiles/<protocol>/user_profile.parquet            user_profile (each user at the window / test start)
  samples/<protocol>/shard=NN/part-0.parquet          ranking_samples, one partition per user shard
"""


import time
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from movielens_assets.assets import ingest, recall
from movielens_assets.assets._catalog import OWNERS, asset_tags
from movielens_assets.assets._compute import compute
from movielens_assets.assets._metadata import markdown_table, png_markdown
from movielens_assets.core.evaluation.splits import load_targets
from movielens_assets.core.ranking.samples import SamplingConfig
from movielens_assets.partitions import RankingShards
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice
from movielens_assets.resources.tmdb import TMDbResource

GROUP = "ranking"
RANKING_PROTOCOLS: tuple[str, ...] = ("last_n",)
"""Protocols whose samples are built: last_n, where the ranker is evaluated end to end. The core handles
global_time alike (its window = the valid file); adding it here doubles the sampling cost."""


def sequences_dir(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "sequences" / protocol


def items_dir(lake: DataLake) -> Path:
    return lake.ranking_dir / "profiles" / "items"


def item_events_dir(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "profiles" / protocol / "item_events"


def circulation_dir(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "profiles" / protocol / "circulation"


def user_profile_path(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "profiles" / protocol / "user_profile.parquet"


def samples_dir(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "samples" / protocol


def shard_dir(lake: DataLake, protocol: str, key: str) -> Path:
    return samples_dir(lake, protocol) / f"shard={key}"


def _dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 2) if path.exists() else 0.0


def _missing_input(exc: FileNotFoundError) -> dg.Failure:
    return dg.Failure(description=f"an input of this step is missing: {exc}")


@dg.asset(group_name=GROUP, deps=[recall.splits], kinds={"numpy"}, owners=OWNERS,
          tags=asset_tags("features", "sequences"), **compute("user_sequences"))
def user_sequences(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource
                   ) -> dg.MaterializeResult:
    """Every user's time-ordered history (movie, rating, time, window flag) of each protocol's source rows
    (its window stage's train + window rows: never a test row), as memory-mapped CSR arrays — samples point
    into it with (user_id, seq_pos) instead of copying sequences -> `<data>/ranking/sequences/<protocol>/*.npy`."""
    from movielens_assets.core.ranking.sequences import build_sequence_store

    stats: dict[str, Any] = {}
    with lake.duckdb() as con:
        for protocol in RANKING_PROTOCOLS:
            start = time.perf_counter()
            test, window = recall.stages(lake, protocol)
            store = build_sequence_store(con, window.fit_dir / "train.parquet",
                                         window.fit_dir / f"{window.target}.parquet", test.fit_dir / "test.parquet")
            store.save(sequences_dir(lake, protocol), meta={"protocol": protocol, "dataset": movielens.dataset})
            stats[protocol] = {"users": store.n_users, "rows": store.n_rows,
                               "window_rows": int(np.asarray(store.in_window).sum()),
                               "mb": _dir_mb(sequences_dir(lake, protocol)),
                               "seconds": round(time.perf_counter() - start, 2)}
            context.log.info(f"user_sequences [{protocol}]: {stats[protocol]}")
    first = RANKING_PROTOCOLS[0]
    return dg.MaterializeResult(metadata={
        "stats": dg.MetadataValue.json(stats), "dagster/row_count": stats[first]["rows"],
        "path": dg.MetadataValue.path(str(sequences_dir(lake, first)))})


@dg.asset(group_name=GROUP,
          deps=[ingest.movies, "movie_tmdb", "tmdb_movie", "tmdb_cast", "tmdb_crew", "item_embeddings", user_sequences],
          kinds={"duckdb", "numpy", "parquet"}, owners=OWNERS, tags=asset_tags("features", "profile"),
          **compute("item_profile"))
def item_profile(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Per movie: year, genres, TMDb directors / top-3 cast / runtime / budget / revenue / votes (a snapshot,
    absent without TMDb data), the semantic embedding and its 32-d PCA; per protocol the point-in-time index
    of its ratings (popularity and rating statistics as of any cut-off) and the ratings by time (what was in
    circulation: the popularity negatives) -> `<data>/ranking/profiles/items/` (items.parquet, semantic*.npy) and
    `<data>/ranking/profiles/<protocol>/{item_events,circulation}/`."""
    from movielens_assets.core.ranking.profiles import (
        Circulation,
        ItemFeatures,
        build_item_table,
        item_events_index,
        semantic_arrays,
    )
    from movielens_assets.core.ranking.sequences import SequenceStore

    start = time.perf_counter()
    with lake.duckdb() as con:
        table, has_tmdb = build_item_table(con, lake.processed("movies"), TMDbResource.star_dir(lake.processed_dir))
    embeddings = recall.stored_item_embeddings(lake)
    movie_ids = table.column("movie_id").to_numpy()
    semantic, has_semantic, pca = semantic_arrays(movie_ids, *(embeddings[:2] if embeddings else (None, None)))
    items = ItemFeatures.from_table(table, has_tmdb, semantic, has_semantic, pca)
    items.save(items_dir(lake), table)
    events: dict[str, int] = {}
    for protocol in RANKING_PROTOCOLS:
        try:
            store = SequenceStore.load(sequences_dir(lake, protocol))
        except FileNotFoundError as exc:
            raise _missing_input(exc) from None
        item_events_index(store).save(item_events_dir(lake, protocol))
        Circulation.from_store(store).save(circulation_dir(lake, protocol))
        events[protocol] = store.n_rows
    n = len(movie_ids)
    coverage = {
        "movies": n,
        "with_tmdb": int(table.column("has_tmdb").to_numpy().sum()),
        "with_director": int((items.directors[:, 0] >= 0).sum()),
        "with_cast": int((items.top_cast[:, 0] >= 0).sum()),
        "with_embedding": int(has_semantic.sum()),
        "with_year": int(np.isfinite(items.year).sum()),
    }
    context.log.info(f"item_profile: {coverage}; point-in-time index rows {events} "
                     f"({time.perf_counter() - start:.1f}s)")
    if not has_tmdb:
        context.log.warning("item_profile: no TMDb data: the TMDb features (runtime, budget, votes, director and "
                            "cast matches) are absent downstream")
    if embeddings is None:
        context.log.warning("item_profile: no stored item embeddings: the semantic similarity feature is absent")
    return dg.MaterializeResult(metadata={
        "coverage": dg.MetadataValue.json(coverage),
        "genres": dg.MetadataValue.json(list(items.genres)),
        "embedding_model": str(embeddings[2].get("model")) if embeddings else "none",
        "semantic_dim": int(semantic.shape[1]), "pca_dim": int(pca.shape[1]),
        "dagster/row_count": n, "path": dg.MetadataValue.path(str(items_dir(lake)))})


def _load_engine(lake: DataLake, protocol: str, channels: tuple[str, ...] = ()):
    """(sequence store, feature engine) of a protocol, memory-mapped; dg.Failure naming what is missing."""
    from movielens_assets.core.ranking.asof import AsOfIndex
    from movielens_assets.core.ranking.features import RankingFeatureEngine
    from movielens_assets.core.ranking.profiles import ItemFeatures
    from movielens_assets.core.ranking.sequences import SequenceStore

    try:
        store = SequenceStore.load(sequences_dir(lake, protocol))
        items = ItemFeatures.load(items_dir(lake))
        if not (item_events_dir(lake, protocol) / "meta.json").is_file():
            raise FileNotFoundError(f"{item_events_dir(lake, protocol)}: materialize `item_profile` first")
        events = AsOfIndex.load(item_events_dir(lake, protocol))
    except FileNotFoundError as exc:
        raise _missing_input(exc) from None
    return store, RankingFeatureEngine(items, events, channels)


@dg.asset(group_name=GROUP, deps=[user_sequences, item_profile], kinds={"numpy", "parquet"}, owners=OWNERS,
          tags=asset_tags("features", "profile"), **compute("user_profile"))
def user_profile(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Each user's profile at their window start and at their test start (activity, rating mean / std, like
    rate, recency, genre shares): exactly what the ranking features see at those cut-offs — computed by the
    same function (`RankingFeatureEngine.user_features`), from history strictly before the cut-off ->
    `<data>/ranking/profiles/<protocol>/user_profile.parquet`."""
    from movielens_assets.core.ranking.profiles import write_user_profiles

    stats: dict[str, Any] = {}
    for protocol in RANKING_PROTOCOLS:
        store, engine = _load_engine(lake, protocol)
        rows = write_user_profiles(store, engine, user_profile_path(lake, protocol))
        stats[protocol] = {"rows": rows, "users": store.n_users}
    first = RANKING_PROTOCOLS[0]
    with lake.duckdb() as con:
        preview = con.execute(f"SELECT user_id, stage, seq_pos, round(u_mean_rating, 2), round(u_like_rate, 2), "
                              f"top_genres FROM read_parquet('{user_profile_path(lake, first)}') LIMIT 8").fetchall()
    return dg.MaterializeResult(metadata={
        "stats": dg.MetadataValue.json(stats), "dagster/row_count": stats[first]["rows"],
        "preview": dg.MetadataValue.md(markdown_table(
            ["user_id", "stage", "seq_pos", "mean rating", "like rate", "top genres"], preview)),
        "path": dg.MetadataValue.path(str(user_profile_path(lake, first)))})


class RankingSamplesConfig(dg.Config):
    """Run config of `ranking_samples`; defaults from `core.ranking.samples.SamplingConfig`."""

    negatives: int = SamplingConfig.negatives
    candidate_negatives: int = SamplingConfig.candidate_negatives
    negative_window_days: float = SamplingConfig.negative_window_days
    valid_fraction: float = SamplingConfig.valid_fraction
    positives_per_chunk: int = SamplingConfig.positives_per_chunk
    seed: int = SamplingConfig.seed


SAMPLE_CHECKS = {
    "positive_to_negative_ratio": "every positive (pos_id) has exactly 1 positive row and `negatives` negatives",
    "no_rated_negatives": "no negative is a movie its user rated at any time (test rows included)",
    "before_test_cutoff": "every cut-off is before its user's first test rating; no positive is a test row",
    "users_in_their_shard": "every user of shard NN hashes to NN (shards are disjoint)",
}


def ranking_samples_asset(partitions_def: dg.StaticPartitionsDefinition) -> dg.AssetsDefinition:
    """`ranking_samples` partitioned by `partitions_def` (the user shards; see `partitions.ranking_shards`)."""
    n_shards = len(partitions_def.get_partition_keys())

    @dg.asset(
        name="ranking_samples", group_name=GROUP, partitions_def=partitions_def,
        deps=[user_sequences, item_profile, recall.recall_candidates, ingest.ratings], kinds={"numpy", "parquet"},
        owners=OWNERS, tags=asset_tags("ranking", "samples"), **compute("ranking_samples"),
        check_specs=[dg.AssetCheckSpec(name, asset="ranking_samples", blocking=True, description=text)
                     for name, text in SAMPLE_CHECKS.items()],
    )
    def ranking_samples(context: dg.AssetExecutionContext, config: RankingSamplesConfig, lake: DataLake,
                        movielens: MovieLensSource) -> dg.MaterializeResult:
        """One user shard of the ranking samples: every source rating as a positive with 9 negatives (window
        positives: candidate negatives from the window recall lists + popularity as of the cut-off; others:
        popularity as of the cut-off), never an item the user rated; point-in-time features; `watch` / `like`
        labels: the ranker's training data -> `<data>/ranking/samples/<protocol>/shard=NN/part-0.parquet` (replaced
        atomically; other shards untouched)."""
        key = context.partition_key
        shard = _shard_index(key, n_shards)
        sampling = SamplingConfig(**config.model_dump())
        stats: dict[str, Any] = {}
        checks: dict[str, dict] = {}
        for protocol in RANKING_PROTOCOLS:
            stats[protocol] = _build_shard(context, lake, movielens, protocol, key, shard, n_shards, sampling)
            for name, result in _check_shard(lake, protocol, key, shard, n_shards, sampling).items():
                merged = checks.setdefault(name, {"passed": True})
                merged["passed"] &= result.pop("passed")
                merged.update({f"{protocol}/{k}": v for k, v in result.items()})
            context.log.info(f"ranking_samples [{protocol}] shard {key}: {stats[protocol]}")
        first = RANKING_PROTOCOLS[0]
        return dg.MaterializeResult(
            metadata={"stats": dg.MetadataValue.json(stats), "dagster/row_count": stats[first]["rows"],
                      "rows_per_s": stats[first]["rows_per_s"], "sampling": dg.MetadataValue.json(sampling.to_dict()),
                      "path": dg.MetadataValue.path(str(shard_dir(lake, first, key)))},
            check_results=[dg.AssetCheckResult(check_name=name, passed=bool(body.pop("passed")), metadata=body)
                           for name, body in checks.items()],
        )

    return ranking_samples


def _shard_index(key: str, n_shards: int) -> int:
    from movielens_assets.core.ranking.shards import parse_shard_key

    try:
        return parse_shard_key(key, n_shards)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None


def _build_shard(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource, protocol: str,
                 key: str, shard: int, n_shards: int, sampling: SamplingConfig) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from movielens_assets.core.data.duck import sql_str
    from movielens_assets.core.ranking.profiles import Circulation
    from movielens_assets.core.ranking.samples import CandidateLists, write_shard
    from movielens_assets.core.ranking.shards import shard_sql

    window_merged = recall.candidates_path(lake, protocol, recall.MERGED, "window")
    if not window_merged.is_file():
        raise dg.Failure(description=f"{window_merged} does not exist: materialize `recall_candidates` first "
                                     "(the window candidates give the candidate negatives and recall features)")
    channels = tuple(c for c in recall.RECALL_CHANNELS if f"rank_{c}" in pq.read_schema(window_merged).names)
    store, engine = _load_engine(lake, protocol, channels)
    try:
        circulation = Circulation.load(circulation_dir(lake, protocol))
    except FileNotFoundError as exc:
        raise _missing_input(exc) from None
    in_shard = shard_sql("user_id", n_shards) + f" = {shard}"
    with lake.duckdb() as con:
        candidates = CandidateLists.from_table(con.sql(
            f"SELECT * FROM read_parquet({sql_str(window_merged)}) WHERE {in_shard}").to_arrow_table(), channels)
        rated = con.execute(f"SELECT (user_id::BIGINT << 32) | movie_id::BIGINT AS k FROM "
                            f"read_parquet({sql_str(lake.processed('ratings'))}) WHERE {in_shard}").fetchnumpy()["k"]
    # sorted here: the negatives' "never rated" rule binary-searches it (see ARCHITECTURE.md, "Query engine")
    return write_shard(shard_dir(lake, protocol, key), store=store, engine=engine, circulation=circulation,
                       interacted=np.sort(np.asarray(rated, dtype=np.int64)), candidates=candidates,
                       catalogue=engine.items.movie_ids, shard=shard, n_shards=n_shards, config=sampling,
                       metadata={"movielens.dataset": movielens.dataset, "movielens.protocol": protocol},
                       progress=context.log.info)


def _check_shard(lake: DataLake, protocol: str, key: str, shard: int, n_shards: int, sampling: SamplingConfig
                 ) -> dict[str, dict]:
    from movielens_assets.core.ranking.samples import check_shard

    test = recall.stages(lake, protocol)[0]
    with lake.duckdb() as con:
        return check_shard(con, shard_dir(lake, protocol, key), ratings=lake.processed("ratings"),
                           test=test.fit_dir / "test.parquet", shard=shard, n_shards=n_shards,
                           negatives=sampling.negatives)


class RankingEdaConfig(dg.Config):
    max_rows: int = 1_000_000
    """Rows sampled (reservoir, seeded) from the shards read."""
    max_shards: int = 4
    """Shards read, spread evenly over the keys."""
    seed: int = 0


@dg.asset(group_name=GROUP, deps=["ranking_samples"], kinds={"duckdb", "matplotlib"}, owners=OWNERS,
          tags=asset_tags("evaluation", "report"), **compute("ranking_eda"))
def ranking_eda(context: dg.AssetExecutionContext, config: RankingEdaConfig, lake: DataLake,
                movielens: MovieLensSource) -> dg.MaterializeResult:
    """Which features carry signal before any training: per feature its coverage, single-feature AUC against
    `watch` and `like` (and like among watched), and the watch rate by decile (PNG per group), over a sample
    of the shards -> `<data>/reports/RANKING_EDA.md` and `<data>/reports/ranking_eda_<group>.png` (the report is
    this asset's `report` metadata)."""
    from movielens_assets.core.data.atomic import atomic_write_text
    from movielens_assets.core.data.duck import sql_str
    from movielens_assets.core.ranking.eda import decile_plots, markdown, summarise
    from movielens_assets.core.ranking.samples import KEY_COLUMNS

    protocol = RANKING_PROTOCOLS[0]
    built = sorted(p for p in samples_dir(lake, protocol).glob("shard=*") if (p / "part-0.parquet").is_file())
    if not built:
        raise dg.Failure(description=f"no shard under {samples_dir(lake, protocol)}: materialize `ranking_samples` "
                                     "(every partition) first")
    step = max(1, len(built) // max(1, config.max_shards))
    chosen = built[::step][: config.max_shards]
    files = "[" + ", ".join(sql_str(p / "part-0.parquet") for p in chosen) + "]"
    with lake.duckdb() as con:
        table = con.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = false) USING SAMPLE "
                        f"reservoir({int(config.max_rows)} ROWS) REPEATABLE ({int(config.seed)})").to_arrow_table()
    if table.num_rows == 0:
        raise dg.Failure(description=f"the shards read ({[p.name for p in chosen]}) hold no rows")
    features = [c for c in table.column_names if c not in KEY_COLUMNS]
    start = time.perf_counter()
    summaries = summarise(table, features)
    base_rate = float(table.column("watch").to_numpy().mean())
    lake.reports_dir.mkdir(parents=True, exist_ok=True)
    plots = decile_plots(summaries, lake.reports_dir, base_rate)
    shards = [p.name.removeprefix("shard=") for p in chosen]
    text = markdown(summaries, rows=table.num_rows, shards=shards, dataset=movielens.dataset, base_rate=base_rate,
                    plots=plots)
    path = atomic_write_text(lake.reports_dir / "RANKING_EDA.md", text)
    context.log.info(f"ranking_eda: {len(features)} features over {table.num_rows:,} rows of shards {shards} in "
                     f"{time.perf_counter() - start:.1f}s -> {path}")
    metadata: dict[str, Any] = {"report": dg.MetadataValue.md(text), "path": dg.MetadataValue.path(str(path)),
                                "rows": table.num_rows, "shards": dg.MetadataValue.json(shards)}
    for s in summaries:
        if np.isfinite(s.auc_watch):
            metadata[f"auc_watch/{s.name}"] = round(s.auc_watch, 4)
    for group, plot in plots.items():
        metadata[f"plot/{group}"] = dg.MetadataValue.path(str(plot))
    return dg.MaterializeResult(metadata=metadata)


# ------------------------------------------------------------------------------------------------- the ranker

def ranker_dir(lake: DataLake, protocol: str, name: str = "unified_ranker") -> Path:
    """`models/ranking/<protocol>/unified_ranker/` (the full model) or `.../ablations/<name>/`."""
    base = lake.models_dir / "ranking" / protocol
    return base / name if name == "unified_ranker" else base / "ablations" / name


def recommendations_dir(lake: DataLake, protocol: str) -> Path:
    return lake.ranking_dir / "recommendations" / protocol


def _shard_files(lake: DataLake, protocol: str, shards: RankingShards) -> list[Path]:
    files = [shard_dir(lake, protocol, key) / "part-0.parquet" for key in shards.partition_keys()]
    missing = [f.parent.name for f in files if not f.is_file()]
    if missing:
        raise dg.Failure(description=f"ranking_samples shards missing under {samples_dir(lake, protocol)}: "
                                     f"{', '.join(missing)} — materialize every partition of `ranking_samples` first")
    return files


class UnifiedRankerAssetConfig(dg.Config):
    """Run config of `unified_ranker`; defaults from `core.ranking.trainer.TrainConfig` and
    `core.ranking.config.UnifiedRankerConfig`, but for the CPU-sized epoch bound below."""

    epochs: int = 8
    max_rows_per_epoch: int | None = 2_000_000
    """Rows per epoch (a fresh shuffle each epoch); None: every training row (~320M at ML-32M scale)."""
    window_share: float | None = 0.17
    """Share of window rows per epoch (the rows where the ranker serves: recall candidates and features); the
    other rows are subsampled to it, afresh each epoch. None: every row, window rows at their natural ~2%."""
    batch_size: int = 1024
    train_role: str = "train"
    """`train`: every non-validation group; `train_window`: the window groups only."""
    patience: int = 2
    min_gain_z: float = 2.0
    """A later epoch becomes the best (the one kept) only when its validation GAUC gain over the best so far,
    paired over the validation users, exceeds this many standard errors (0: any gain)."""
    num_workers: int = 0
    """DataLoader workers (0: batches built in the training process)."""
    num_threads: int | None = 2
    """torch threads while training. 2 threads with the batches built in-process trained faster than 1
    thread + 1 loader worker on the 2-core machine (docs/BENCHMARKS.md, "UnifiedRanker: training, loader,
    scoring"); with more cores, add loader workers before threads (the model's small matrices gain little from
    more threads). On a machine busy with other work set 1: torch's threads wait for each other, and with two
    other processes on the two cores the 2-thread training fell to a small fraction of its rate on a quiet
    machine (no doc section holds the figure; benchmarks/ranker.py measures the rate)."""
    normalizer_rows: int = 500_000
    embed_dim: int = 16
    use_din: bool = True
    use_cross: bool = True
    task_weights: list[float] = [1.0, 1.0]
    lr: float = 1e-3
    seed: int = 0
    ablations: list[str] = ["full_same_budget", "no_din", "no_cross", "single_task", "no_recall_features"]
    """Ablations trained on the same data, epochs and rows per epoch as the full model but for
    `ablation_epochs` (`core.ranking.trainer.ABLATIONS`; `full_same_budget` is the full model at that budget,
    the row to compare them with); [] = none."""
    ablation_epochs: int = 4


def _configs(config: UnifiedRankerAssetConfig):
    from movielens_assets.core.ranking.config import UnifiedRankerConfig
    from movielens_assets.core.ranking.trainer import TrainConfig

    model = UnifiedRankerConfig(embed_dim=config.embed_dim, use_din=config.use_din, use_cross=config.use_cross,
                                task_weights=tuple(config.task_weights), lr=config.lr, seed=config.seed)
    train = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, train_role=config.train_role,
                        max_rows_per_epoch=config.max_rows_per_epoch, window_share=config.window_share,
                        patience=config.patience, min_gain_z=config.min_gain_z,
                        num_workers=config.num_workers, num_threads=config.num_threads,
                        normalizer_rows=config.normalizer_rows, seed=config.seed)
    return model, train


def _data_fingerprint(files: list[Path]) -> list[dict]:
    import pyarrow.parquet as pq

    return [{"file": str(f), "rows": pq.ParquetFile(f).metadata.num_rows, "bytes": f.stat().st_size,
             "mtime": f.stat().st_mtime} for f in files]


@dg.asset(group_name=GROUP, deps=["ranking_samples", user_sequences, item_profile],
          kinds={"pytorch"}, owners=OWNERS, tags=asset_tags("ranking", "model"), **compute("unified_ranker"),
          check_specs=[dg.AssetCheckSpec("checkpoint_reproduces_validation_scores", asset="unified_ranker",
                                         blocking=True, description="the checkpoint directory, loaded back, scores "
                                         "its stored validation rows exactly as the trained model did")])
def unified_ranker(context: dg.AssetExecutionContext, config: UnifiedRankerAssetConfig, lake: DataLake,
                   movielens: MovieLensSource, torch_device: TorchDevice, ranking_shards: RankingShards
                   ) -> dg.MaterializeResult:
    """The UnifiedRanker (DIN + DCN-V2 + MMoE, tasks watch / like) trained on every shard of the samples
    (streamed), early-stopped on the validation users' GAUC, saved as a checkpoint directory (weights, item
    tables, vocabularies, normalisation, configs, data, training log) ->
    `<data>/models/ranking/<protocol>/unified_ranker/` with its training curve (`training_curve.png`, also shown
    in this asset's metadata); the ablations beside it (`<data>/models/ranking/<protocol>/ablations/<name>/`)."""
    from movielens_assets.core.ranking.trainer import RankerCheckpoint, ranker_runs, train_rankers

    protocol = RANKING_PROTOCOLS[0]
    files = _shard_files(lake, protocol, ranking_shards)
    store, engine = _load_engine(lake, protocol)
    device = torch_device.resolve()
    model_config, train_config = _configs(config)
    data = {"dataset": movielens.dataset, "protocol": protocol, "shards": _data_fingerprint(files)}
    runs = ranker_runs(model_config, train_config, config.ablations, config.ablation_epochs)
    trained = train_rankers(files, store, engine.items, runs, lambda name: ranker_dir(lake, protocol, name), data,
                            device=device, log=context.log.info)
    metadata: dict[str, Any] = {"device": device}
    full = trained.full
    if full is not None:
        metadata.update({
            "training_curve": dg.MetadataValue.json([
                {"epoch": e["epoch"], "loss": round(e["loss"], 5), "valid_gauc": e["valid"]["gauc"]}
                for e in full.epochs
            ]),
            "training_curve_plot": dg.MetadataValue.path(str(full.out / "training_curve.png")),
            "training_curve_chart": png_markdown(full.out / "training_curve.png",
                                                 "training loss and validation GAUC per epoch"),
            "samples_per_s": float(full.best["samples_per_s"]), "train_seconds": full.train_seconds,
            "valid_gauc_watch": float(full.best["valid"]["gauc"]["watch"]),
            "parameters": full.parameters,
            "model_config": dg.MetadataValue.json(full.model_config),
            "train_config": dg.MetadataValue.json(full.train_config),
            "path": dg.MetadataValue.path(str(full.out))})
    check = RankerCheckpoint.verify(ranker_dir(lake, protocol))
    metadata["models"] = dg.MetadataValue.json(trained.summary)
    return dg.MaterializeResult(metadata=metadata, check_results=[dg.AssetCheckResult(
        check_name="checkpoint_reproduces_validation_scores", passed=bool(check.pop("passed")), metadata=check)])


class RankedRecommendationsConfig(dg.Config):
    top_n: int = 50
    users_per_chunk: int = 1_000
    """Users whose candidates are featurised and scored together (~200 rows each; a worker's unit of work)."""
    workers: int | None = None
    """Processes scoring chunks in parallel, one torch thread each (None: one per CPU core; 1: in the asset's
    process). docs/BENCHMARKS.md, "UnifiedRanker": scoring throughput by number of workers."""
    num_threads: int | None = 1
    """torch threads while scoring when `workers` is 1 (None: torch's default)."""


@dg.asset(group_name=GROUP, deps=[unified_ranker, recall.recall_candidates], kinds={"pytorch", "parquet"},
          owners=OWNERS, tags=asset_tags("ranking", "recommendations"), **compute("ranked_recommendations"))
def ranked_recommendations(context: dg.AssetExecutionContext, config: RankedRecommendationsConfig,
                           lake: DataLake) -> dg.MaterializeResult:
    """Every evaluated (last_n test) user's merged top-200 candidates re-ranked by the ranker: the final top-N
    with the ranker's scores and the channels that proposed each item
    (`<data>/ranking/recommendations/<protocol>/ranked.parquet`, what serving reads), and every scored candidate
    (`<data>/ranking/recommendations/<protocol>/scored_candidates.parquet`, for the ranking metrics)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path
    from movielens_assets.core.ranking.rerank import rerank
    from movielens_assets.core.ranking.trainer import RankerCheckpoint

    protocol = RANKING_PROTOCOLS[0]
    try:
        checkpoint = RankerCheckpoint.load(ranker_dir(lake, protocol))
    except FileNotFoundError as exc:
        raise _missing_input(exc) from None
    channels = tuple(c[3:-5] for c in checkpoint.normalizer.names if c.startswith("ch_") and c.endswith("_rank")
                     and c != "ch_merged_rank")
    store, engine = _load_engine(lake, protocol, channels)
    merged = pq.read_table(recall.candidates_path(lake, protocol, recall.MERGED))
    with lake.duckdb() as con:
        users = load_targets(con, recall.stages(lake, protocol)[0])[0]
    start = time.perf_counter()
    scored = rerank({"unified_ranker": checkpoint}, store, engine, merged, users,
                    users_per_chunk=config.users_per_chunk, workers=config.workers,
                    num_threads=config.num_threads, progress=context.log.info)["unified_ranker"]
    seconds = time.perf_counter() - start
    top = scored.filter(pc.less_equal(scored["rank"], config.top_n))
    out = recommendations_dir(lake, protocol)
    for name, table in (("scored_candidates", scored), ("ranked", top)):
        with atomic_path(out / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
    context.log.info(f"ranked_recommendations: {users.size:,} users, {scored.num_rows:,} candidates scored in "
                     f"{seconds:.1f}s ({scored.num_rows / max(seconds, 1e-9):,.0f}/s); top {config.top_n} -> {out}")
    preview = top.filter(pc.is_in(top["user_id"], top["user_id"].slice(0, 1))).slice(0, 10).to_pylist()
    rows = [(r["user_id"], r["movie_id"], r["rank"], r["merged_rank"], f"{r['p_watch']:.3f}", ", ".join(r["channels"]))
            for r in preview]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": top.num_rows, "users": int(users.size), "scored_candidates": scored.num_rows,
        "candidates_per_s": round(scored.num_rows / max(seconds, 1e-9), 1),
        "preview": dg.MetadataValue.md(markdown_table(["user", "movie", "rank", "merged rank", "p(watch)",
                                                      "channels"], rows)),
        "path": dg.MetadataValue.path(str(out / "ranked.parquet"))})


class RankingMetricsConfig(dg.Config):
    n_boot: int = 1000
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[ranked_recommendations, unified_ranker], kinds={"numpy", "json"}, owners=OWNERS,
          tags=asset_tags("evaluation", "metrics"), **compute("ranking_metrics"))
def ranking_metrics(context: dg.AssetExecutionContext, config: RankingMetricsConfig, lake: DataLake,
                    movielens: MovieLensSource) -> dg.MaterializeResult:
    """The ranker where it is used: AUC / GAUC / logloss per task on the held-out candidates, and HR / Recall /
    NDCG @ 10, 20, 50 (95% intervals) of the re-ranked lists beside the merged (recall-only) order and every
    channel, over ALL last_n test users; the ablations beside the full model -> `<data>/metrics/ranking.json` and
    `<data>/metrics/ranking.md` (the table is this asset's `table` metadata)."""
    import json

    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_write_text
    from movielens_assets.core.ranking.report import markdown, ranking_report
    from movielens_assets.core.ranking.trainer import ABLATIONS, RankerCheckpoint

    protocol = RANKING_PROTOCOLS[0]
    scored_path = recommendations_dir(lake, protocol) / "scored_candidates.parquet"
    if not scored_path.is_file():
        raise dg.Failure(description=f"{scored_path} does not exist: materialize `ranked_recommendations` first")
    scored = pq.read_table(scored_path)
    with lake.duckdb() as con:
        targets = load_targets(con, recall.stages(lake, protocol)[0])
    channel_paths = {c: recall.candidates_path(lake, protocol, c) for c in recall.RECALL_CHANNELS
                     if recall.candidates_path(lake, protocol, c).exists()}
    # the ablations trained in the same run as the full model (older ablation directories are not reported)
    trained = json.loads((ranker_dir(lake, protocol) / "meta.json").read_text()).get("ablations", [])
    present = {n: ranker_dir(lake, protocol, n) for n in trained if n in ABLATIONS}
    missing = [n for n, d in present.items() if not (d / "model.pt").is_file()]
    if missing:
        raise dg.Failure(description=f"ablation checkpoints missing: {missing} — materialize `unified_ranker` again")
    checkpoints = {n: RankerCheckpoint.load(d) for n, d in present.items()}
    store, engine = _load_engine(lake, protocol, tuple(channel_paths)) if present else (None, None)
    report = ranking_report(scored, targets, recall.candidates_path(lake, protocol, recall.MERGED), channel_paths,
                            dataset=movielens.dataset, protocol=protocol, n_boot=config.n_boot, seed=config.seed,
                            ablations=checkpoints, store=store, engine=engine, progress=context.log.info)
    cls, final, recall_only, channels = report, report["final_ci"], report["recall_only_ci"], report["channels_ci"]
    text = markdown(report)
    atomic_write_text(lake.metrics_dir / "ranking.json", json.dumps(report, indent=2))
    atomic_write_text(lake.metrics_dir / "ranking.md", text)
    best = max(channels, key=lambda c: channels[c]["ndcg@20"]) if channels else None
    context.log.info(f"ranking metrics ({movielens.dataset}): NDCG@20 final {final['ndcg@20']:.4f}, recall-only "
                     f"{recall_only['ndcg@20']:.4f}, best channel {best} "
                     f"{channels[best]['ndcg@20'] if best else float('nan'):.4f}; "
                     f"GAUC watch {cls['gauc']['watch']:.4f}, like {cls['gauc']['like']:.4f}\n{text}")
    metadata: dict[str, Any] = {"table": dg.MetadataValue.md(text),
                                "path": dg.MetadataValue.path(str(lake.metrics_dir / "ranking.json")),
                                "ndcg@20_final": final["ndcg@20"], "ndcg@20_recall_only": recall_only["ndcg@20"],
                                "gauc_watch": cls["gauc"]["watch"], "gauc_like": cls["gauc"]["like"]}
    if best:
        metadata["ndcg@20_best_channel"] = channels[best]["ndcg@20"]
    return dg.MaterializeResult(metadata=metadata)
