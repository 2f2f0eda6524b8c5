"""Semantic recall: nearest neighbours, in the item-embedding space, of the user's recent items.

Input: a float32 matrix [n_items, d] of L2-normalised item embeddings aligned with the IdMap items, and a
boolean mask `has_embedding` (False = no embedding: such an item is neither a query nor a neighbour).
`fit` builds a faiss index (`ann.py`) over the embedded items and keeps, for every embedded item, its
`neighbours` most similar items (one batched search). `recommend` takes each user's last `recent` training
items, weights item number a (0 = most recent) by `recency_decay ** a`, and scores every candidate by
sum over recent items of weight * max(similarity, 0) (`kernels.neighbour_topk`, the loop ItemCF uses too);
items the user saw in training are excluded, items reached by no recent item are not returned (-1 / nan
padding).

Popularity plays no part, so items with few ratings are found as readily as popular ones (cold items),
as long as they have an embedding.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from movielens_assets.core.recall.ann import AnnConfig, AnnIndex
from movielens_assets.core.recall.base import BaseRecall, IdMap, Interactions


@dataclass(frozen=True)
class SemanticConfig:
    recent: int = 20  # R: last R training items of the user used as queries
    recency_decay: float = 0.85  # weight of the a-th most recent item (a = 0, 1, ...)
    neighbours: int = 100  # kept per item
    ann: AnnConfig = field(default_factory=AnnConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SemanticConfig:
        d = dict(d)
        d["ann"] = AnnConfig(**d.get("ann", {}))
        return cls(**d)


def align_embeddings(id_map: IdMap, movie_ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (e.g. `EmbeddingStore.load(...)`: raw movie ids + vectors) aligned with the IdMap items:
    (float32 [n_items, d], zero rows where missing; has_embedding bool [n_items]). Movies unknown to the
    IdMap are dropped."""
    vectors = np.asarray(vectors, dtype=np.float32)
    idx = id_map.item_index(np.asarray(movie_ids, dtype=np.int64))
    keep = idx >= 0
    out = np.zeros((id_map.n_items, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    out[idx[keep]] = vectors[keep]
    has = np.zeros(id_map.n_items, dtype=bool)
    has[idx[keep]] = True
    return out, has


class SemanticRecall(BaseRecall):
    name = "semantic"

    def __init__(self, item_embeddings: np.ndarray, has_embedding: np.ndarray | None = None,
                 config: SemanticConfig | None = None):
        self.config = config or SemanticConfig()
        self.item_embeddings = np.ascontiguousarray(item_embeddings, dtype=np.float32)
        n = self.item_embeddings.shape[0]
        self.has_embedding = (np.ones(n, dtype=bool) if has_embedding is None
                              else np.asarray(has_embedding, dtype=bool))
        if self.has_embedding.shape != (n,):
            raise ValueError("has_embedding must have one entry per embedding row")
        self.train: Interactions | None = None
        self.index_: AnnIndex | None = None
        self.neighbours_: np.ndarray | None = None  # int32 [n_items, N], -1 padded
        self.similarities_: np.ndarray | None = None  # float32 [n_items, N], 0 where padded

    def fit(self, train: Interactions) -> SemanticRecall:
        n_items = self.item_embeddings.shape[0]
        if n_items != train.n_items:
            raise ValueError(f"item_embeddings has {n_items} rows, train has {train.n_items} items")
        self.train = train
        embedded = np.flatnonzero(self.has_embedding)
        self.index_ = AnnIndex.build(self.item_embeddings[embedded], self.config.ann, ids=embedded)
        n_nb = self.config.neighbours
        nb = np.full((n_items, n_nb), -1, dtype=np.int32)
        sim = np.zeros((n_items, n_nb), dtype=np.float32)
        if embedded.size:
            ids, sc = self.index_.search(self.item_embeddings[embedded], n_nb + 1)
            # drop the item itself (wherever it ranks; an item with an exact duplicate may not be first)
            self_hit = ids == embedded[:, None]
            ids = np.where(self_hit, -1, ids)
            order = np.argsort(ids < 0, axis=1, kind="stable")  # valid ids first, order kept
            ids = np.take_along_axis(ids, order, axis=1)[:, :n_nb]
            sc = np.take_along_axis(np.where(self_hit, np.nan, sc), order, axis=1)[:, :n_nb]
            nb[embedded] = ids
            sim[embedded] = np.where(ids >= 0, np.nan_to_num(sc, nan=0.0), 0.0)
        self.neighbours_, self.similarities_ = nb, np.maximum(sim, 0.0)
        return self

    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from movielens_assets.core.recall.kernels import neighbour_topk

        if self.neighbours_ is None or self.similarities_ is None or self.train is None:  # set together by fit / load
            raise RuntimeError("SemanticRecall is not fitted")
        weights = self.config.recency_decay ** np.arange(self.config.recent, dtype=np.float64)
        return neighbour_topk(users, self.train.indptr, self.train.items, self.neighbours_, self.similarities_,
                              weights, k, item_ok=self.has_embedding)

    def save(self, directory: Path) -> None:
        from movielens_assets.core.data.atomic import atomic_path

        if self.neighbours_ is None or self.similarities_ is None or self.index_ is None:  # set together
            raise RuntimeError("SemanticRecall is not fitted")
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            np.save(tmp / "item_embeddings.npy", self.item_embeddings)
            np.save(tmp / "has_embedding.npy", self.has_embedding)
            np.save(tmp / "neighbours.npy", self.neighbours_)
            np.save(tmp / "similarities.npy", self.similarities_)
            self.index_.save(tmp / "index")

    @classmethod
    def load(cls, directory: Path, train: Interactions) -> SemanticRecall:
        directory = Path(directory)
        config = SemanticConfig.from_dict(json.loads((directory / "config.json").read_text()))
        self = cls(np.load(directory / "item_embeddings.npy"), np.load(directory / "has_embedding.npy"), config)
        if train.n_items != self.item_embeddings.shape[0]:
            raise ValueError("train does not match the saved channel's id space")
        self.train = train
        self.neighbours_ = np.load(directory / "neighbours.npy")
        self.similarities_ = np.load(directory / "similarities.npy")
        self.index_ = AnnIndex.load(directory / "index")
        return self
