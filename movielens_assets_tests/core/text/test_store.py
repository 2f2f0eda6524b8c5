"""Embedding store and the incremental run: append-only chunks, resumption, model / text changes,
wrong dimension on resume, compaction, statistics and the genre signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.text.embedders import EmbeddingDimensionError, l2_normalize
from movielens_assets.core.text.store import EmbeddingStore, embed_items, embedding_stats, genre_signal


class FakeEmbedder:
    """Deterministic vectors per (model, text); counts what it embeds; can fail on a given call."""

    def __init__(self, model_key: str = "fake/model", dim: int = 8, *, fail_on_call: int | None = None,
                 known_dim: bool = True) -> None:
        self.model_key, self._dim, self.fail_on_call, self.known_dim = model_key, dim, fail_on_call, known_dim
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int | None:
        return self._dim if self.known_dim else None

    def embed(self, texts):
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("interrupted")
        rows = [np.random.default_rng(int(hashlib.sha256(f"{self.model_key}|{t}".encode()).hexdigest()[:8], 16))
                .standard_normal(self._dim) for t in texts]
        return l2_normalize(np.array(rows))

    def describe(self):
        return {"backend": "fake"}

    @property
    def embedded(self) -> int:
        return sum(len(c) for c in self.calls)


def catalogue(n: int = 10, changed: dict[int, str] | None = None):
    ids = np.arange(1, n + 1, dtype=np.int32)
    texts = [(changed or {}).get(int(m), f"movie {m} " + "x" * int(m)) for m in ids]
    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    return ids, texts, hashes


def keys(ids, hashes) -> pa.Table:
    return pa.table({"movie_id": pa.array(ids, pa.int32()), "text_hash": hashes})


def test_first_run_embeds_everything_in_chunks_and_rerun_embeds_nothing(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(10)
    emb = FakeEmbedder()
    r = embed_items(ids, texts, hashes, emb, store, chunk_size=4)
    assert (r.movies, r.embedded, r.reused, r.chunks_written, r.dim) == (10, 10, 0, 3, 8)
    assert [len(c) for c in emb.calls] == [4, 4, 2] and emb.calls[0][0] == texts[-1]  # longest first
    assert len(store.chunks()) == 3
    t = pq.read_table(store.chunks()[0])
    assert t.schema.field("embedding").type == pa.list_(pa.float32(), 8)
    assert t.schema.field("movie_id").type == pa.int32() and set(t.column("model").to_pylist()) == {"fake/model"}
    assert pq.read_metadata(store.chunks()[0]).metadata[b"movielens.embedding_dim"] == b"8"

    movie_ids, vectors = store.load("fake/model", keys(ids, hashes))
    assert movie_ids.tolist() == ids.tolist() and vectors.dtype == np.float32 and vectors.shape == (10, 8)
    assert np.allclose(vectors, emb.embed(texts), atol=1e-7)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)

    stamps = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in store.chunks()}
    again = FakeEmbedder()
    r2 = embed_items(ids, texts, hashes, again, store, chunk_size=4)
    assert (r2.embedded, r2.reused, r2.chunks_written, again.calls) == (0, 10, 0, [])
    assert r2.dim == 8
    # append-only: existing chunks are never rewritten
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in store.chunks()} == stamps


def test_only_changed_texts_and_a_new_model_are_embedded(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(10)
    embed_items(ids, texts, hashes, FakeEmbedder(), store, chunk_size=4)
    ids2, texts2, hashes2 = catalogue(10, changed={3: "a new overview for movie 3", 7: "movie 7 re-tagged"})
    emb = FakeEmbedder()
    r = embed_items(ids2, texts2, hashes2, emb, store, chunk_size=4)
    assert r.embedded == 2 and sorted(emb.calls[0]) == sorted([texts2[2], texts2[6]])
    _, current = store.load("fake/model", keys(ids2, hashes2))
    assert np.allclose(current[2], emb.embed([texts2[2]])[0])
    assert store.load("fake/model", keys(ids, hashes))[0].tolist() == ids.tolist()  # old texts still stored

    other = FakeEmbedder("other/model", dim=4)
    r = embed_items(ids2, texts2, hashes2, other, store, chunk_size=100)
    assert r.embedded == 10 and r.dim == 4
    assert store.stats()["models"] == ["fake/model", "other/model"]


def test_interrupted_run_keeps_finished_chunks_and_resume_embeds_only_the_rest(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(10)
    broken = FakeEmbedder(fail_on_call=3)
    with pytest.raises(RuntimeError, match="interrupted"):
        embed_items(ids, texts, hashes, broken, store, chunk_size=3)
    assert len(store.chunks()) == 2 and store.index("fake/model").num_rows == 6
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # no temporary left
    resume = FakeEmbedder()
    r = embed_items(ids, texts, hashes, resume, store, chunk_size=3)
    assert (r.embedded, r.reused) == (4, 6) and resume.embedded == 4
    movie_ids, vectors = store.load("fake/model", keys(ids, hashes))
    assert movie_ids.tolist() == ids.tolist()
    assert np.allclose(vectors, FakeEmbedder().embed(texts), atol=1e-7)


@pytest.mark.parametrize("known_dim", [True, False], ids=["dim-known-up-front", "dim-learnt-from-output"])
def test_wrong_dimension_on_resume_is_a_clear_error(tmp_path, known_dim):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(6)
    embed_items(ids[:3], texts[:3], hashes[:3], FakeEmbedder(dim=8), store)
    bigger = FakeEmbedder(dim=16, known_dim=known_dim)
    with pytest.raises(EmbeddingDimensionError, match=r"model 'fake/model' with dimension \[8\].*16-d"):
        embed_items(ids, texts, hashes, bigger, store)
    assert bigger.calls == ([] if known_dim else [texts[3:][::-1]])  # known: fails before any work
    assert store.index().num_rows == 3  # nothing written
    with pytest.raises(ValueError, match="same length"):
        embed_items(ids, texts[:2], hashes, FakeEmbedder(), store)


def test_compact_keeps_only_current_vectors(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(10)
    embed_items(ids, texts, hashes, FakeEmbedder(), store, chunk_size=3)
    ids2, texts2, hashes2 = catalogue(10, changed={1: "changed"})
    embed_items(ids2, texts2, hashes2, FakeEmbedder(), store, chunk_size=3)
    embed_items(ids2, texts2, hashes2, FakeEmbedder("other/model"), store)
    before = store.load("fake/model", keys(ids2, hashes2))
    result = store.compact("fake/model", keys(ids2, hashes2), chunk_size=8)
    assert result == {"chunks_removed": 6, "chunks_written": 2, "rows": 10}
    assert store.stats()["rows"] == 10 and store.stats()["models"] == ["fake/model"]
    after = store.load("fake/model", keys(ids2, hashes2))
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_embedding_stats_report_nan_norms_and_coverage(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    v = l2_normalize(np.random.default_rng(0).standard_normal((4, 3)))
    v[1] = [np.nan, 0, 0]
    v[2] *= 2.0
    store.append([1, 2, 3, 4], ["h1", "h2", "h3", "h4"], "m", v)
    st = embedding_stats(store, "m", keys([1, 2, 3, 4, 5], ["h1", "h2", "h3", "h4", "h5"]))
    assert (st["rows"], st["movies"], st["missing"], st["nan_rows"], st["bad_norm_rows"], st["dims"]) == \
        (4, 5, 1, 1, 1, [3])
    assert st["coverage"] == 0.8 and st["norm_max"] == pytest.approx(2.0, abs=1e-5)


def test_genre_signal_matches_brute_force():
    rng = np.random.default_rng(1)
    centers = {"Animation": rng.standard_normal(16), "Horror": rng.standard_normal(16)}
    genres, vecs = {}, []
    for m in range(40):
        g = "Animation" if m < 20 else "Horror"
        genres[m] = [g] if m % 10 else ["Animation", "Horror"]  # 4 movies in both: left out
        vecs.append(centers[g] + 0.8 * rng.standard_normal(16))
    vectors = l2_normalize(np.array(vecs))
    ids = np.arange(40)
    (row,) = genre_signal(ids, vectors, genres, pairs=[("Animation", "Horror")])
    a = [m for m in ids if genres[m] == ["Animation"]]
    b = [m for m in ids if genres[m] == ["Horror"]]
    sim = vectors @ vectors.T
    within_a = sim[np.ix_(a, a)][~np.eye(len(a), dtype=bool)].mean()
    across = sim[np.ix_(a, b)].mean()
    assert (row["movies_a"], row["movies_b"]) == (18, 18)
    assert row["within_a"] == pytest.approx(within_a, abs=1e-4) and row["across"] == pytest.approx(across, abs=1e-4)
    assert row["margin"] > 0.2
    assert genre_signal(ids, vectors, genres, pairs=[("Animation", "Western")]) == []  # too few: skipped


def test_load_item_embeddings_reads_the_manifest_model_for_the_current_texts(tmp_path):
    from movielens_assets.core.text.store import load_item_embeddings

    features = tmp_path / "features"
    store = EmbeddingStore(features / "item_embeddings")
    with pytest.raises(FileNotFoundError, match="materialize `item_embeddings`"):
        load_item_embeddings(features)
    ids, texts, hashes = catalogue(5)
    embed_items(ids, texts, hashes, FakeEmbedder(), store)
    embed_items(ids, texts, hashes, FakeEmbedder("other/model"), store)
    pq.write_table(keys(ids[:4], hashes[:4]), features / "item_text.parquet")
    store.write_manifest({"model": "fake/model", "dim": 8})
    movie_ids, vectors, manifest = load_item_embeddings(features)
    assert movie_ids.tolist() == [1, 2, 3, 4] and vectors.shape == (4, 8) and manifest["dim"] == 8
    assert np.allclose(vectors, FakeEmbedder().embed(texts[:4]), atol=1e-7)
