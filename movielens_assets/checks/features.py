"""Blocking checks on the features group.

- `item_text`: `one_text_per_movie` — every movie of `movies` has exactly one non-empty text and a
  64-hex text hash.
- `item_embeddings` (one multi-asset check, the vectors read once, streamed chunk by chunk):
  `dimension_matches_model` (every current vector has the dimension recorded for the model, and the
  well-known size of that model when there is one), `no_nan` (no NaN / inf), `unit_norm` (every L2
  norm within 1e-3 of 1) and `coverage` (share of the catalogue with a current embedding; WARN
  severity, reported on every run).
"""


from collections.abc import Iterator

import dagster as dg
import pyarrow.parquet as pq

from movielens_assets.assets import features as feature_assets
from movielens_assets.core.data.duck import one_row, sql_str
from movielens_assets.core.text.embedders import expected_dim
from movielens_assets.core.text.store import NORM_TOLERANCE, EmbeddingStore, embedding_stats
from movielens_assets.resources import DataLake


@dg.asset_check(
    asset=feature_assets.item_text,
    name="one_text_per_movie",
    description="Every movie has exactly one non-empty text with a SHA-256 text_hash.",
    blocking=True,
)
def one_text_per_movie(lake: DataLake) -> dg.AssetCheckResult:
    path = feature_assets.item_text_path(lake)
    with lake.duckdb() as con:
        movies, texts, distinct, empty, bad_hash, missing = one_row(con.execute(
            f"""SELECT (SELECT count(*) FROM read_parquet({sql_str(lake.processed('movies'))})),
                       count(*), count(DISTINCT movie_id), count_if(text IS NULL OR trim(text) = ''),
                       count_if(text_hash IS NULL OR NOT regexp_full_match(text_hash, '[0-9a-f]{{64}}')),
                       (SELECT count(*) FROM read_parquet({sql_str(lake.processed('movies'))}) m
                        WHERE m.movie_id NOT IN (SELECT movie_id FROM read_parquet({sql_str(path)})))
                FROM read_parquet({sql_str(path)})"""
        ))
    passed = texts == distinct == movies and not empty and not bad_hash and not missing
    return dg.AssetCheckResult(
        passed=bool(passed),
        metadata={"movies": movies, "texts": texts, "duplicate_movie_ids": texts - distinct,
                  "empty_texts": empty, "bad_hashes": bad_hash, "movies_without_text": missing},
    )


_ASSET = feature_assets.item_embeddings.key


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("dimension_matches_model", asset=_ASSET, blocking=True,
                          description="Every current vector has the model's dimension (its known size when there "
                                      "is one)."),
        dg.AssetCheckSpec("no_nan", asset=_ASSET, blocking=True, description="No NaN or infinite value."),
        dg.AssetCheckSpec("unit_norm", asset=_ASSET, blocking=True,
                          description=f"Every vector has L2 norm 1 (within {NORM_TOLERANCE})."),
        dg.AssetCheckSpec("coverage", asset=_ASSET, blocking=True,
                          description="Share of the catalogue (item_text) with a current embedding (WARN below 1)."),
    ],
    name="item_embeddings_checks",
    can_subset=False,
)
def item_embeddings_checks(lake: DataLake) -> Iterator[dg.AssetCheckResult]:
    store = EmbeddingStore(feature_assets.embeddings_dir(lake))
    manifest = store.read_manifest()
    if manifest is None:
        for name in ("dimension_matches_model", "no_nan", "unit_norm", "coverage"):
            yield dg.AssetCheckResult(asset_key=_ASSET, check_name=name, passed=False,
                                      metadata={"summary": f"no manifest in {store.root}: item_embeddings never ran"})
        return
    keys = pq.read_table(feature_assets.item_text_path(lake), columns=["movie_id", "text_hash"])
    model = manifest["model"]
    st = embedding_stats(store, model, keys)
    known = expected_dim(model)
    recorded = manifest.get("dim")
    dims_ok = st["dims"] in ([], [recorded]) and (known is None or recorded is None or recorded == known)
    yield dg.AssetCheckResult(
        asset_key=_ASSET, check_name="dimension_matches_model", passed=bool(dims_ok),
        metadata={"model": model, "stored_dims": dg.MetadataValue.json(st["dims"]),
                  "recorded_dim": recorded if recorded is not None else 0,
                  "known_model_dim": known if known is not None else 0},
    )
    yield dg.AssetCheckResult(asset_key=_ASSET, check_name="no_nan", passed=st["nan_rows"] == 0,
                              metadata={"rows": st["rows"], "nan_rows": st["nan_rows"]})
    norm_meta = {"rows": st["rows"], "bad_norm_rows": st["bad_norm_rows"], "tolerance": NORM_TOLERANCE}
    if st["norm_min"] is not None:
        norm_meta.update(norm_min=st["norm_min"], norm_max=st["norm_max"])
    yield dg.AssetCheckResult(asset_key=_ASSET, check_name="unit_norm", passed=st["bad_norm_rows"] == 0,
                              metadata=norm_meta)
    yield dg.AssetCheckResult(
        asset_key=_ASSET, check_name="coverage", passed=st["missing"] == 0, severity=dg.AssetCheckSeverity.WARN,
        metadata={"coverage": st["coverage"], "movies": st["movies"], "embedded": st["rows"],
                  "missing": st["missing"], "model": model},
    )


feature_checks = [one_text_per_movie, item_embeddings_checks]
