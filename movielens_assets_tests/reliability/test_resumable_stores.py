"""Resumable stores and damaged files: a truncated embedding chunk is detected and its movies embedded again; a
damaged TMDb landing-zone chunk is named (default) or skipped so that its ids are fetched again."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from movielens_assets.core.text.store import CorruptEmbeddingChunk, EmbeddingStore, embed_items
from movielens_assets_tests.core.text.test_store import FakeEmbedder, catalogue, keys


def test_a_truncated_embedding_chunk_is_moved_aside_and_re_embedded(tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    ids, texts, hashes = catalogue(10)
    embed_items(ids, texts, hashes, FakeEmbedder(), store, chunk_size=4)
    _, clean = store.load("fake/model", keys(ids, hashes))
    damaged = store.chunks()[1]
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated outside this code (disk, copy, user)

    with pytest.raises(CorruptEmbeddingChunk, match=damaged.name):  # a reader names the file, never guesses
        EmbeddingStore(store.root).load("fake/model", keys(ids, hashes))

    lines: list[str] = []
    again = FakeEmbedder()
    fresh = EmbeddingStore(store.root)
    report = embed_items(ids, texts, hashes, again, fresh, chunk_size=4, log=lines.append)
    assert report.embedded == 4 and report.reused == 6  # only the damaged chunk's movies
    assert fresh.quarantined == [damaged.name] and (store.root / "_corrupt" / damaged.name).is_file()
    assert any("damaged chunk" in line for line in lines)
    movie_ids, vectors = EmbeddingStore(store.root).load("fake/model", keys(ids, hashes))
    assert movie_ids.tolist() == ids.tolist() and np.allclose(vectors, clean, atol=1e-7)


def test_a_damaged_tmdb_landing_chunk_is_named_or_skipped_and_refetched(tmp_path):
    from movielens_assets.core.tmdb.landing import CorruptChunkError, LandingZone

    zone = LandingZone(tmp_path / "landing")
    chunk = tmp_path / "landing" / "chunk-20260101T000000000000Z-deadbeef.jsonl.gz"
    chunk.parent.mkdir(parents=True)
    chunk.write_bytes(gzip.compress(b'{"tmdb_id": 1, "status": 200}\n')[:-6])  # truncated gzip stream
    with pytest.raises(CorruptChunkError, match=chunk.name):
        zone.latest()
    skipping = LandingZone(tmp_path / "landing", on_corrupt="skip")
    assert skipping.pending([1, 2]) == [1, 2] and skipping.skipped_chunks == [chunk.name]
