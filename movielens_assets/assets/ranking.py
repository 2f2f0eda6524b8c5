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
from movielens_assets.assets._metadata import markdown_table
from movielens_assets.core.ranking.samples import SamplingConfig
from movielens_assets.resources import DataLake, MovieLensSource
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


@dg.asset(group_name=GROUP, deps=[recall.splits], kinds={"numpy"})
def user_sequences(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource
                   ) -> dg.MaterializeResult:
    """Every user's time-ordered history (movie, rating, time, window flag) of each protocol's source rows
    (its window stage's train + window rows: never a test row), as memory-mapped CSR arrays — samples point
    into it with (user_id, seq_pos) instead of copying sequences (`ranking/sequences/<protocol>/`)."""
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
          kinds={"duckdb", "numpy", "parquet"})
def item_profile(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Per movie: year, genres, TMDb directors / top-3 cast / runtime / budget / revenue / votes (a snapshot,
    absent without TMDb data), the semantic embedding and its 32-d PCA; per protocol the point-in-time index
    of its ratings (popularity and rating statistics as of any cut-off) and the ratings by time (what was in
    circulation: the popularity negatives)."""
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


@dg.asset(group_name=GROUP, deps=[user_sequences, item_profile], kinds={"numpy", "parquet"})
def user_profile(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Each user's profile at their window start and at their test start (activity, rating mean / std, like
    rate, recency, genre shares): exactly what the ranking features see at those cut-offs — computed by the
    same function (`RankingFeatureEngine.user_features`), from history strictly before the cut-off."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from movielens_assets.core.data.atomic import atomic_path
    from movielens_assets.core.ranking.samples import user_chunks
    from movielens_assets.core.ranking.sequences import NO_TIME

    stats: dict[str, Any] = {}
    for protocol in RANKING_PROTOCOLS:
        store, engine = _load_engine(lake, protocol)
        genres = np.asarray(engine.items.genres, dtype=object)
        rows = 0
        with atomic_path(user_profile_path(lake, protocol)) as tmp:
            writer = None
            try:
                for users in user_chunks(store, np.arange(store.n_users), 500_000):
                    chunk = engine.chunk(store, users)
                    local = np.arange(users.size)
                    for stage, starts in (("window", chunk.window_start), ("test", chunk.test_start)):
                        sel = local[starts != NO_TIME]
                        if not sel.size:
                            continue
                        cut = starts[sel]
                        feats = engine.user_features(chunk, sel, cut)
                        share, _ = engine.user_genre_shares(chunk, sel, cut)
                        top = np.argsort(-share, axis=1, kind="stable")[:, :3]
                        top_names = [[str(genres[j]) for j in row if share[i, j] > 0] for i, row in enumerate(top)]
                        table = pa.table({
                            "user_id": chunk.user_ids[sel].astype(np.int32), "stage": [stage] * sel.size,
                            "cutoff_ts": cut, "seq_pos": chunk.seq_pos(sel, cut).astype(np.int32),
                            **{k: v.astype(np.float32) for k, v in feats.items()},
                            "genre_share": pa.FixedSizeListArray.from_arrays(
                                pa.array(share.astype(np.float32).ravel()), max(len(genres), 1))
                            if len(genres) else pa.array([[] for _ in range(sel.size)], pa.list_(pa.float32())),
                            "top_genres": top_names})
                        if writer is None:
                            meta = {"movielens.genres": ",".join(genres)}
                            writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta), compression="zstd")
                        writer.write_table(table)
                        rows += table.num_rows
            finally:
                if writer is not None:
                    writer.close()
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
        check_specs=[dg.AssetCheckSpec(name, asset="ranking_samples", blocking=True, description=text)
                     for name, text in SAMPLE_CHECKS.items()],
    )
    def ranking_samples(context: dg.AssetExecutionContext, config: RankingSamplesConfig, lake: DataLake,
                        movielens: MovieLensSource) -> dg.MaterializeResult:
        """One user shard of the ranking samples: every source rating as a positive with 9 negatives (window
        positives: candidate negatives from the window recall lists + popularity as of the cut-off; others:
        popularity as of the cut-off), never an item the user rated; point-in-time features; `watch` / `like`
        labels -> `ranking/samples/<protocol>/shard=NN/` (replaced atomically; other shards untouched)."""
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
                            f"read_parquet({sql_str(lake.processed('ratings'))}) WHERE {in_shard} ORDER BY k"
                            ).fetchnumpy()["k"]
    return write_shard(shard_dir(lake, protocol, key), store=store, engine=engine, circulation=circulation,
                       interacted=np.asarray(rated, dtype=np.int64), candidates=candidates,
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


@dg.asset(group_name=GROUP, deps=["ranking_samples"], kinds={"duckdb", "matplotlib"})
def ranking_eda(context: dg.AssetExecutionContext, config: RankingEdaConfig, lake: DataLake,
                movielens: MovieLensSource) -> dg.MaterializeResult:
    """Which features carry signal before any training: per feature its coverage, single-feature AUC against
    `watch` and `like` (and like among watched), and the watch rate by decile (PNG per group), over a sample
    of the shards -> `reports/RANKING_EDA.md`."""
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
