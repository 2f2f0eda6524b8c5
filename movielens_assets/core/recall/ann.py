"""Approximate (or exact) maximum-inner-product search over item vectors with faiss.

- `AnnConfig` chooses the index: exact `IndexFlatIP` up to `exact_max_items` items, IVF (`IndexIVFFlat`)
  or HNSW (`IndexHNSWFlat`) above it (`large_kind`), or one kind forced with `kind`.
- `AnnIndex.build(vectors, config)` / `.search(queries, k)` (batched; -1 / nan padded, best first) /
  `.save(directory)` (atomic) / `AnnIndex.load(directory)`.
- `recommend_by_vectors(...)`: the channel-side step shared by vector channels — exact scoring with the
  compiled unseen top-k for a flat index; otherwise search k + (seen count) candidates, drop the items the
  user saw in training, keep the top k; rows where the approximate search could not supply k unseen items
  fall back to exact scoring over all items, so no user gets a short list because of the index.

faiss is imported inside functions only (loading the Dagster code location must stay fast).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np

from movielens_assets.core.recall.base import Interactions, top_k

KINDS = ("auto", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class AnnConfig:
    kind: str = "auto"  # auto | flat | ivf | hnsw
    exact_max_items: int = 50_000  # auto: exact IndexFlatIP up to this many vectors
    large_kind: str = "hnsw"  # auto: the index used above exact_max_items (ivf | hnsw)
    ivf_nlist: int | None = None  # None: ~4 * sqrt(n), at most n // 39 (faiss wants >= 39 points per list)
    ivf_nprobe: int = 32
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128  # raised to k at query time when k is larger
    search_batch: int = 4096  # queries per faiss call
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"AnnConfig.kind must be one of {KINDS}, got {self.kind!r}")
        if self.large_kind not in ("ivf", "hnsw"):
            raise ValueError(f"AnnConfig.large_kind must be 'ivf' or 'hnsw', got {self.large_kind!r}")

    def resolved_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.exact_max_items else self.large_kind


class AnnIndex:
    """A faiss inner-product index over `n` vectors whose ids are 0..n-1 (or the given `ids`)."""

    def __init__(self, index, kind: str, config: AnnConfig, ids: np.ndarray | None):
        self.index = index
        self.kind = kind
        self.config = config
        self.ids = ids  # int64 external ids of the rows, or None for 0..n-1

    @property
    def n(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, config: AnnConfig | None = None, ids: np.ndarray | None = None) -> AnnIndex:
        import faiss

        config = config or AnnConfig()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"vectors must be 2-D, got shape {x.shape}")
        n, d = x.shape
        kind = config.resolved_kind(n)
        index: faiss.Index
        if kind == "flat" or n == 0:
            kind = "flat"
            index = faiss.IndexFlatIP(d)
        elif kind == "ivf":
            nlist = config.ivf_nlist or int(round(4 * math.sqrt(n)))
            nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
            quantizer = faiss.IndexFlatIP(d)
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.cp.seed = config.seed
            ivf.train(x)
            ivf.nprobe = min(config.ivf_nprobe, nlist)
            index = ivf
        else:  # hnsw
            hnsw = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = config.hnsw_ef_construction
            hnsw.hnsw.efSearch = config.hnsw_ef_search
            index = hnsw
        if n:
            index.add(x)
        out_ids = None if ids is None else np.asarray(ids, dtype=np.int64)
        if out_ids is not None and out_ids.shape != (n,):
            raise ValueError("ids must have one entry per vector")
        return cls(index, kind, config, out_ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids [n, k] (int32, -1 padded) and inner products [n, k] (float32, nan padded), best first."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        nq = q.shape[0]
        k = int(k)
        ids_out = np.full((nq, max(k, 0)), -1, dtype=np.int32)
        sc_out = np.full((nq, max(k, 0)), np.nan, dtype=np.float32)
        if nq == 0 or k <= 0 or self.n == 0:
            return ids_out, sc_out
        kk = min(k, self.n)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(self.config.hnsw_ef_search, kk)
        step = max(1, self.config.search_batch)
        for s in range(0, nq, step):
            d, i = self.index.search(q[s : s + step], kk)
            valid = i >= 0
            if self.ids is not None:
                i = np.where(valid, self.ids[np.maximum(i, 0)], -1)
            ids_out[s : s + step, :kk] = i
            sc_out[s : s + step, :kk] = np.where(valid, d, np.nan)
        return ids_out, sc_out

    def save(self, directory: Path) -> None:
        """Write `index.faiss` + `meta.json` (+ `ids.npy`) into `directory`, atomically as a whole."""
        import faiss

        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            (tmp / "meta.json").write_text(json.dumps({"kind": self.kind, "config": asdict(self.config)}))
            if self.ids is not None:
                np.save(tmp / "ids.npy", self.ids)

    @classmethod
    def load(cls, directory: Path) -> AnnIndex:
        import faiss

        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        index = faiss.read_index(str(directory / "index.faiss"))
        config = AnnConfig(**meta["config"])
        if meta["kind"] == "ivf":
            ivf = cast("faiss.IndexIVFFlat", index)  # read_index returns the concrete (downcast) index class
            ivf.nprobe = min(config.ivf_nprobe, ivf.nlist)
        ids_path = directory / "ids.npy"
        return cls(index, meta["kind"], config, np.load(ids_path) if ids_path.exists() else None)


def recommend_by_vectors(
    index: AnnIndex,
    item_vectors: np.ndarray,
    query_vectors: np.ndarray,
    users: np.ndarray,
    seen: Interactions,
    k: int,
    *,
    batch_size: int = 2048,
    dense_fraction: float = 0.3,
    max_extra: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k unseen items per user by inner product of `query_vectors[i]` with the item vectors.

    With an exact (`flat`) index, users are scored exactly: a BLAS product against all `item_vectors` per
    block of users, then the compiled top-k that skips the user's training items
    (`kernels.dense_topk_unseen`) — faster than a faiss search that would have to go k + (seen count)
    deep. With an approximate index, users are processed in batches of similar seen-item counts; a batch
    searches k + min(largest seen count in the batch, `max_extra`, default k) candidates and drops the seen
    ones (`kernels.seen_mask`); the rows left with fewer than k unseen items (heavy users whose seen items
    crowd the top) are scored exactly. Capping the depth matters: HNSW's cost grows with the depth, and
    at 32M ratings a full k + seen-count search ran much slower for the same lists (docs/BENCHMARKS.md,
    "Recall"). A batch whose depth
    would exceed `dense_fraction` of the catalogue is scored exactly at once. Returns item indices [n, k]
    (int32, -1 padded) and scores [n, k] (float32, nan padded).
    """
    from movielens_assets.core.recall.kernels import dense_topk_unseen, seen_mask

    users = np.asarray(users, dtype=np.int64)
    n, n_items = users.size, int(item_vectors.shape[0])
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_sc = np.full((n, k), np.nan, dtype=np.float32)
    if n == 0 or k <= 0:
        return out_idx, out_sc
    q_all = np.ascontiguousarray(query_vectors, dtype=np.float32)
    item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
    dense_rows_cap = max(1, (1 << 24) // max(n_items, 1))  # ~64 MB of float32 scores per dense block

    buffer = np.empty((min(dense_rows_cap, n), n_items), dtype=np.float32)  # reused: no page faults per block

    def dense(rows: np.ndarray) -> None:
        for s in range(0, rows.size, dense_rows_cap):
            r = rows[s : s + dense_rows_cap]
            scores = np.matmul(q_all[r], item_vectors.T, out=buffer[: r.size])
            out_idx[r], out_sc[r] = dense_topk_unseen(scores, users[r], seen.indptr, seen.items, k)

    if index.kind == "flat":
        dense(np.arange(n))
        return out_idx, out_sc
    seen_counts = seen.indptr[users + 1] - seen.indptr[users]
    order = np.argsort(seen_counts, kind="stable")
    for s in range(0, n, batch_size):
        rows = order[s : s + batch_size]
        depth = k + min(int(seen_counts[rows].max()), k if max_extra is None else max_extra)
        if depth >= dense_fraction * n_items:
            dense(rows)
            continue
        cand, sc = index.search(q_all[rows], depth)
        sc = np.where(cand >= 0, sc, -np.inf).astype(np.float32)
        sc[seen_mask(cand, users[rows], seen.indptr, seen.items, n_items)] = -np.inf
        pos, val = top_k(sc, k)
        got = np.where(pos >= 0, np.take_along_axis(cand, np.maximum(pos, 0), axis=1), -1)
        out_idx[rows, : got.shape[1]] = got
        out_sc[rows, : val.shape[1]] = val
        # an approximate index may return too few unseen items: exact fallback for those rows
        want = np.minimum(k, n_items - seen_counts[rows])
        short = rows[(got >= 0).sum(axis=1) < want]
        if short.size:
            dense(short)
    return out_idx, out_sc
