"""Group `features`: one text per movie (`item_text`) -> its semantic embedding (`item_embeddings`).

The logic lives in `core.text` (template, embedders, append-only store); these assets read their
inputs, call it and report. See docs/EMBEDDINGS.md.

- `item_text` works with or without TMDb data and tags (absent / empty tables leave their lines out).
- `item_embeddings` is incremental and resumable: only movies whose text hash or model changed are
  embedded, in chunks appended to `features/item_embeddings/` as they finish.
"""


import time
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow.parquet as pq

from movielens_assets.assets import ingest as ingest_assets
from movielens_assets.assets._catalog import OWNERS, asset_tags
from movielens_assets.assets._compute import compute
from movielens_assets.assets._metadata import markdown_table, parquet_table_metadata
from movielens_assets.core.text.embedders import EmbeddingAPIError, EmbeddingConfigError, EmbeddingDimensionError
from movielens_assets.core.text.item_text import TEMPLATE_VERSION, build_item_texts
from movielens_assets.core.text.store import EmbeddingStore, embed_items, genre_signal
from movielens_assets.resources import DataLake, MovieLensSource
from movielens_assets.resources.device import TorchDevice
from movielens_assets.resources.embedder import EmbedderResource
from movielens_assets.resources.tmdb import TMDbResource

GROUP = "features"
#: The TMDb star tables the item text reads (built by `tmdb_star`, possibly empty).
TMDB_INPUTS = ("movie_tmdb", "tmdb_movie", "tmdb_cast", "tmdb_crew", "tmdb_person", "tmdb_movie_keyword",
               "tmdb_keyword")


def features_dir(lake: DataLake) -> Path:
    """`<data>/features/`."""
    return lake.root_path / "features"


def item_text_path(lake: DataLake) -> Path:
    return features_dir(lake) / "item_text.parquet"


def embeddings_dir(lake: DataLake) -> Path:
    """`<data>/features/item_embeddings/`: the append-only embedding store."""
    return features_dir(lake) / "item_embeddings"


@dg.asset(
    group_name=GROUP,
    deps=[ingest_assets.movies, ingest_assets.tags, *TMDB_INPUTS],
    kinds={"duckdb", "parquet"},
    owners=OWNERS,
    tags=asset_tags("features", "table"),
)
def item_text(context: dg.AssetExecutionContext, lake: DataLake, movielens: MovieLensSource) -> dg.MaterializeResult:
    """`<data>/features/item_text.parquet`: one text per movie (title, year, genres, top user tags and, when
    present, TMDb overview, tagline, keywords, director, top-billed cast) with its SHA-256 `text_hash`: what
    `item_embeddings` embeds. Template `item-text-v1`, documented in `core/text/item_text.py` and
    docs/EMBEDDINGS.md."""
    out = item_text_path(lake)
    with lake.duckdb() as con:
        report = build_item_texts(
            con, movies=lake.processed("movies"), tags=lake.processed("tags"),
            tmdb_dir=TMDbResource.star_dir(lake.processed_dir), out_path=out, dataset=movielens.dataset,
        )
        metadata = parquet_table_metadata(con, out, dataset=movielens.dataset, preview_rows=5)
    s = report.stats
    context.log.info(
        f"item_text: {report.rows:,} texts ({TEMPLATE_VERSION}) in {report.seconds:.1f}s; with TMDb "
        f"{s['with_tmdb_share']:.1%}, with an overview {s['with_overview_share']:.1%}, with tags "
        f"{s['with_tags_share']:.1%}; mean {s['mean_chars']:.0f} characters"
        + (f"; vs the previous build: {report.changes}" if report.changes else "")
    )
    if not report.tmdb_available:
        note = ("no TMDb data (star tables absent or empty): texts use title, year, genres and tags only. "
                "See tmdb_raw for how to enrich the catalogue.")
        context.log.warning(note)
        metadata["note"] = note
    metadata.update({
        "template_version": TEMPLATE_VERSION,
        "seconds": round(report.seconds, 3),
        "sources": dg.MetadataValue.json(report.sources),
        **{k: v for k, v in s.items()},
    })
    if report.changes is not None:
        metadata.update({f"changes_{k}": v for k, v in report.changes.items()})
    return dg.MaterializeResult(metadata=metadata)


class ItemEmbeddingsConfig(dg.Config):
    """Run config of `item_embeddings`."""

    compact: bool = False
    """After embedding, rewrite the store to hold only the current vectors (drops older texts / models)."""


def _genres(lake: DataLake) -> dict[int, list[str]]:
    t = pq.read_table(lake.processed("movies"), columns=["movie_id", "genres"])
    return dict(zip(t.column("movie_id").to_pylist(), t.column("genres").to_pylist(), strict=True))


def _signal_metadata(signal: list[dict[str, Any]]) -> dict[str, Any]:
    if not signal:
        return {"genre_signal": dg.MetadataValue.md("no genre pair has 5+ movies on each side: no signal computed")}
    margins = [row["margin"] for row in signal]
    cols = ["pair", "movies_a", "movies_b", "within", "across", "margin"]
    return {
        "genre_signal": dg.MetadataValue.md(
            "Mean cosine between two movies of the same genre (within, mean of both sides) vs between the "
            "genres (across); movies listed in both are left out. Within must exceed across.\n\n"
            + markdown_table(cols, [tuple(row[c] for c in cols) for row in signal])
        ),
        "genre_signal_min_margin": float(min(margins)),
        "genre_signal_mean_margin": round(float(np.mean(margins)), 4),
        "genre_signal_ok": bool(min(margins) > 0),
    }


@dg.asset(group_name=GROUP, deps=[item_text, ingest_assets.movies], kinds={"pytorch", "parquet"}, owners=OWNERS,
          tags=asset_tags("features", "embeddings"), **compute("item_embeddings"))
def item_embeddings(
    context: dg.AssetExecutionContext,
    config: ItemEmbeddingsConfig,
    lake: DataLake,
    embedder: EmbedderResource,
    torch_device: TorchDevice,
) -> dg.MaterializeResult:
    """`<data>/features/item_embeddings/`: float32, L2-normalised text embeddings of every movie, stored with
    movie_id, model, dim and text_hash in append-only Parquet chunks (+ `_manifest.json`), read by the two-tower
    and semantic recall channels and the ranker. Reruns embed only movies whose text hash or model changed; an
    interrupted run keeps its finished chunks."""
    path = item_text_path(lake)
    if not path.is_file():
        raise dg.Failure(description=f"{path} does not exist: materialize `item_text` first")
    items = pq.read_table(path, columns=["movie_id", "text", "text_hash"])
    texts = items.column("text").to_pylist()
    hashes = items.column("text_hash").to_pylist()
    movie_ids = items.column("movie_id").to_numpy()
    store = EmbeddingStore(embeddings_dir(lake))
    try:
        backend = embedder.backend_name
    except EmbeddingConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    device = torch_device.resolve() if backend == "sentence-transformers" else "remote"
    context.log.info(f"item_embeddings: {embedder.describe()} on device {device}; store {store.root}")
    start = time.perf_counter()
    try:
        model = embedder.build(device, log=context.log.info)
        report = embed_items(movie_ids, texts, hashes, model, store, chunk_size=embedder.chunk_size,
                             log=context.log.info)
    except (EmbeddingConfigError, EmbeddingDimensionError) as exc:
        raise dg.Failure(description=str(exc)) from None
    except EmbeddingAPIError as exc:
        s = store.stats()
        raise dg.Failure(
            description=(f"{exc}. The {s['chunks']} chunk(s) stored so far are kept; a rerun embeds only what "
                         "is missing."),
            metadata={"store_chunks": s["chunks"], "store_rows": s["rows"]},
        ) from None
    total_s = time.perf_counter() - start
    keys = items.select(["movie_id", "text_hash"])
    ids, vectors = store.load(report.model_key, keys)
    dim = report.dim if report.dim is not None else (int(vectors.shape[1]) if vectors.size else None)
    signal = genre_signal(ids, vectors, _genres(lake)) if len(ids) else []
    compaction = None
    if config.compact:
        compaction = store.compact(report.model_key, keys)
        context.log.info(f"item_embeddings: store compacted: {compaction}")
    s = store.stats()
    coverage = len(ids) / len(movie_ids) if len(movie_ids) else 0.0
    manifest = {
        "model": report.model_key, "dim": dim, "backend": backend, "movies": len(movie_ids),
        "embedded": len(ids), "coverage": round(coverage, 6), "template_version": TEMPLATE_VERSION,
        "item_text": str(path), "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.write_manifest(manifest)
    context.log.info(
        f"item_embeddings: {len(ids):,}/{len(movie_ids):,} movies ({coverage:.1%}) with {report.model_key} "
        f"({dim}-d); embedded {report.embedded:,} this run at {report.texts_per_s:,.1f} texts/s, "
        f"reused {report.reused:,}"
    )
    metadata: dict[str, Any] = {
        "dagster/row_count": len(ids),
        "path": dg.MetadataValue.path(str(store.root)),
        "model": report.model_key,
        "backend": backend,
        "device": device,
        "dim": dim if dim is not None else 0,
        "movies": len(movie_ids),
        "embedded_share": round(coverage, 6),
        "embedded_this_run": report.embedded,
        "reused": report.reused,
        "texts_per_s": round(report.texts_per_s, 2),
        "embed_seconds": round(report.seconds, 3),
        "total_seconds": round(total_s, 3),
        "chunks_written": report.chunks_written,
        "store_chunks": s["chunks"],
        "store_rows": s["rows"],
        "store_mb": round(s["bytes"] / 2**20, 3),
        "template_version": TEMPLATE_VERSION,
        "embedder": dg.MetadataValue.json(model.describe()),
        **_signal_metadata(signal),
    }
    load_s = getattr(model, "load_seconds", None)
    if load_s:
        metadata["model_load_seconds"] = round(load_s, 3)
    api_stats = getattr(model, "stats", None)
    if api_stats:
        metadata["api"] = dg.MetadataValue.json(dict(api_stats))
    if compaction is not None:
        metadata["compaction"] = dg.MetadataValue.json(compaction)
    if signal and not metadata["genre_signal_ok"]:
        context.log.warning("item_embeddings: for some genre pair the within-genre similarity does not exceed the "
                            "across-genre one (see genre_signal)")
    return dg.MaterializeResult(metadata=metadata)
