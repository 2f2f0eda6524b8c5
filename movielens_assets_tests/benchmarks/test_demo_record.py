"""benchmarks/demo_record.py: the record of `make demo`'s outputs that refactors are compared against."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("demo_record", ROOT / "benchmarks" / "demo_record.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lake(root: Path, ratings: pa.Table, chunks: list[pa.Table], ndcg: float) -> Path:
    (root / "processed").mkdir(parents=True)
    pq.write_table(ratings, root / "processed" / "ratings.parquet")
    store = root / "features" / "item_embeddings"
    store.mkdir(parents=True)
    for i, chunk in enumerate(chunks):  # named per run, as the embedding store names them
        pq.write_table(chunk, store / f"chunk-2026010{i}T000000Z-{root.name}{i}.parquet")
    (root / "tmdb" / "landing").mkdir(parents=True)
    pq.write_table(pa.table({"fetched_at": [str(root)]}), root / "tmdb" / "landing" / "x.parquet")  # not recorded
    # a table with the run's time in a column: that column is left out of the hash
    pq.write_table(pa.table({"tmdb_id": [7], "fetched_at": [str(root)]}), root / "processed" / "tmdb_movie.parquet")
    (root / "metrics").mkdir()
    (root / "metrics" / "ranking.json").write_text(json.dumps({"final": {"ndcg@20": ndcg}, "dataset": "x"}))
    return root


def test_the_record_ignores_order_and_file_names_and_catches_every_change(tmp_path):
    m = _module()
    ratings = pa.table({"user_id": [1, 1, 2], "movie_id": [10, 11, 10], "rating": [4.0, 3.5, 5.0]})
    emb = pa.table({"movie_id": [10, 11], "v": [0.25, 0.5]})
    old = m.record(_lake(tmp_path / "a", ratings, [emb.slice(0, 1), emb.slice(1)], 0.2))
    assert set(old["files"]) == {"processed/ratings.parquet", "processed/tmdb_movie.parquet",
                                 "features/item_embeddings/chunk-*.parquet"}
    assert old["files"]["features/item_embeddings/chunk-*.parquet"]["rows"] == 2
    # the same rows in another order, chunks split differently and named otherwise: the same outputs
    same = m.record(_lake(tmp_path / "b", ratings.take([2, 0, 1]), [emb], 0.2))
    assert m.compare(old, same, rtol=1e-6, exact=True) == []
    # one value changed, a float changed by 1e-9 (equal up to floating point unless --exact), a metric moved
    changed = ratings.set_column(2, "rating", pa.array([4.0, 3.5, 4.5]))
    tiny = pa.table({"movie_id": [10, 11], "v": [0.25, 0.5 + 1e-12]})
    new = m.record(_lake(tmp_path / "c", changed, [tiny], 0.21))
    problems = m.compare(old, new, rtol=1e-6, exact=False)
    assert any(p.startswith("processed/ratings.parquet: content differs") for p in problems)
    assert not any("item_embeddings" in p for p in problems)
    assert "metrics/ranking.json: final.ndcg@20 0.2 -> 0.21" in problems
    assert any("item_embeddings" in p for p in m.compare(old, new, rtol=1e-6, exact=True))
    # a missing file and a row-count change
    fewer = m.record(_lake(tmp_path / "d", ratings.slice(0, 2), [emb], 0.2))
    (tmp_path / "d" / "features" / "item_embeddings").rename(tmp_path / "d" / "gone")
    gone = m.record(tmp_path / "d")
    assert any("rows 3 -> 2" in p for p in m.compare(old, fewer, 1e-6, False))
    assert "features/item_embeddings/chunk-*.parquet: missing" in m.compare(old, gone, 1e-6, False)
