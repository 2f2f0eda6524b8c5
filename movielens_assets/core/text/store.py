"""Append-only embedding store keyed by (movie_id, text_hash, model), and the incremental run.

Layout (`<data>/features/item_embeddings/`):

    chunk-20260101T120000123456Z-0a1b2c3d4e5f.parquet   one per embedded batch of movies, never rewritten
    _manifest.json                                      the current model, dimension and counts (atomic)

Every chunk is a Parquet file with the columns

    movie_id INT32, text_hash STRING (SHA-256 of the item text), model STRING (the embedder's
    model_key), dim INT32, embedding FIXED_SIZE_LIST<FLOAT32>[dim] (L2-normalised)

and holds one model's vectors (its key and dimension are also in the file's key-value metadata).
Chunks are written to a hidden temporary name and renamed (`core.data.atomic`): a chunk is either
complete or absent. Nothing is ever rewritten (the earlier system rewrote its whole output every 500
rows: quadratic I/O), so an interrupted run keeps every finished chunk and the rerun embeds only what
is missing. A chunk that cannot be read (truncated, not Parquet: damaged outside this code) is moved to
`_corrupt/` by the next `index()` -- the resume read of every run -- so its movies count as missing and are
embedded again; a damaged chunk found while reading vectors raises `CorruptEmbeddingChunk` naming it. The
**current** embedding of a movie is the row whose (movie_id, text_hash, model)
matches its current item text and the configured model; rows of older texts or other models stay
until `compact()` drops them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movielens_assets.core.data.atomic import atomic_path, atomic_write_text
from movielens_assets.core.text.embedders import Embedder, EmbeddingDimensionError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

MANIFEST = "_manifest.json"
CHUNK_GLOB = "chunk-*.parquet"
DEFAULT_CHUNK_SIZE = 2048
NORM_TOLERANCE = 1e-3
#: Genre pairs for the quality signal: clearly different kinds of movie (MovieLens genre names).
GENRE_PAIRS: tuple[tuple[str, str], ...] = (
    ("Animation", "Horror"),
    ("Children", "Thriller"),
    ("Documentary", "Action"),
    ("Romance", "Sci-Fi"),
    ("Comedy", "War"),
)
Log = Callable[[str], None]


class CorruptEmbeddingChunk(RuntimeError):
    """A chunk of the store cannot be read (the message names it and what to do)."""


def _schema(dim: int) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("movie_id", pa.int32()), ("text_hash", pa.string()), ("model", pa.string()), ("dim", pa.int32()),
        ("embedding", pa.list_(pa.float32(), dim)),
    ])


def vectors_of(table: pa.Table, dim: int) -> np.ndarray:
    """The `embedding` column as a (rows, dim) float32 array (no per-row Python)."""
    import pyarrow as pa

    col = table.column("embedding")
    if col.num_chunks == 0 or table.num_rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


class EmbeddingStore:
    """The chunk directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._dims: dict[str, set[int]] = {}  # model_key -> stored dims (read once, then kept current)
        self.quarantined: list[str] = []
        """Chunks moved to `_corrupt/` by `index()` because they could not be read."""

    def chunks(self) -> list[Path]:
        """Complete chunks in creation order (names sort by UTC time); temporaries are hidden."""
        return sorted(self.root.glob(CHUNK_GLOB)) if self.root.is_dir() else []

    def index(self, model_key: str | None = None) -> pa.Table:
        """(movie_id, text_hash, model, dim, chunk) of every stored row (of one model when given).
        Reads only these small columns, never the vectors."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parts = []
        for chunk in self.chunks():
            try:
                t = pq.read_table(chunk, columns=["movie_id", "text_hash", "model", "dim"])
            except (pa.ArrowException, OSError):  # damaged: move it aside, its movies are embedded again
                (self.root / "_corrupt").mkdir(exist_ok=True)
                chunk.replace(self.root / "_corrupt" / chunk.name)
                self.quarantined.append(chunk.name)
                continue
            if model_key is not None:
                t = t.filter(pc.equal(t["model"], model_key))
            parts.append(t.append_column("chunk", pa.array([chunk.name] * t.num_rows, pa.string())))
        if not parts:
            return pa.table({"movie_id": pa.array([], pa.int32()), "text_hash": pa.array([], pa.string()),
                             "model": pa.array([], pa.string()), "dim": pa.array([], pa.int32()),
                             "chunk": pa.array([], pa.string())})
        return pa.concat_tables(parts)

    def dims(self, model_key: str) -> set[int]:
        if model_key not in self._dims:
            self._dims[model_key] = {int(d) for d in self.index(model_key).column("dim").unique().to_pylist()}
        return set(self._dims[model_key])

    def check_dim(self, model_key: str, dim: int) -> None:
        """EmbeddingDimensionError when stored vectors of `model_key` have another dimension."""
        stored = self.dims(model_key)
        if stored and stored != {dim}:
            raise EmbeddingDimensionError(
                f"the embedding store {self.root} holds vectors of model {model_key!r} with dimension "
                f"{sorted(stored)}, but the model now produces {dim}-d vectors: the model changed under the same "
                "name (another checkpoint at the same path, or another dimensions setting). Give the new model "
                f"its own name/path, or move the old vectors away (delete {self.root}) to re-embed everything."
            )

    def append(self, movie_ids: Sequence[int] | np.ndarray, text_hashes: Sequence[str], model_key: str,
               vectors: np.ndarray) -> Path:
        """Write one new chunk atomically; returns its path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        if len(movie_ids) != n or len(text_hashes) != n:
            raise ValueError(f"{len(movie_ids)} ids / {len(text_hashes)} hashes for {n} vectors")
        self.check_dim(model_key, dim)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        table = pa.table(
            [pa.array(np.asarray(movie_ids, dtype=np.int32)), pa.array(list(text_hashes), pa.string()),
             pa.array([model_key] * n, pa.string()), pa.array(np.full(n, dim, dtype=np.int32)),
             pa.FixedSizeListArray.from_arrays(flat, dim)],
            schema=_schema(dim).with_metadata({"movielens.embedding_model": model_key,
                                               "movielens.embedding_dim": str(dim)}),
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.root / f"chunk-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd", row_group_size=max(n, 1))
        self._dims.setdefault(model_key, set()).add(dim)
        return path

    def iter_rows(self, model_key: str, keys: pa.Table | None = None) -> Iterator[tuple[np.ndarray, list[str],
                                                                                          np.ndarray]]:
        """(movie_ids, text_hashes, vectors) per chunk for `model_key`, restricted to `keys` (a table of
        movie_id, text_hash) when given; each (movie_id, text_hash) at most once over the whole stream."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        wanted = None if keys is None else set(zip(keys.column("movie_id").to_pylist(),
                                                    keys.column("text_hash").to_pylist(), strict=True))
        seen: set[tuple[int, str]] = set()
        for chunk in self.chunks():
            try:
                t = pq.read_table(chunk)
            except (pa.ArrowException, OSError) as exc:
                raise CorruptEmbeddingChunk(
                    f"{chunk}: the embedding chunk cannot be read ({exc}); materialize `item_embeddings` again "
                    "(a chunk whose index columns are damaged is moved aside and re-embedded), or delete the file"
                ) from exc
            t = t.filter(pc.equal(t["model"], model_key))
            if t.num_rows == 0:
                continue
            ids, hashes = t.column("movie_id").to_pylist(), t.column("text_hash").to_pylist()
            take = []
            for i, key in enumerate(zip(ids, hashes, strict=True)):
                if key not in seen and (wanted is None or key in wanted):
                    seen.add(key)
                    take.append(i)
            if not take:
                continue
            sel = t.take(take)
            yield (np.asarray(sel.column("movie_id").to_numpy(), dtype=np.int32), sel.column("text_hash").to_pylist(),
                   vectors_of(sel, int(sel.column("dim")[0].as_py())))

    def load(self, model_key: str, keys: pa.Table | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(movie_ids, vectors) of `model_key` (the current ones when `keys` is given), sorted by movie_id."""
        ids, vecs = [], []
        for i, _h, v in self.iter_rows(model_key, keys):
            ids.append(i)
            vecs.append(v)
        if not ids:
            dims = self.dims(model_key)
            return np.zeros(0, dtype=np.int32), np.zeros((0, min(dims) if dims else 0), dtype=np.float32)
        movie_ids, vectors = np.concatenate(ids), np.vstack(vecs)
        order = np.argsort(movie_ids, kind="stable")
        return movie_ids[order], vectors[order]

    def stats(self) -> dict[str, Any]:
        idx = self.index()
        chunks = self.chunks()
        models = sorted(set(idx.column("model").to_pylist()))
        return {"chunks": len(chunks), "rows": idx.num_rows, "models": models,
                "bytes": sum(c.stat().st_size for c in chunks)}

    def compact(self, model_key: str, keys: pa.Table, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, int]:
        """Rewrite the current rows of `model_key` into fresh chunks of `chunk_size` rows and delete
        every old chunk.

        Crash-safe: the new chunks are complete before any old one is removed (a crash in between
        leaves duplicates, which readers de-duplicate). Drops older texts and other models."""
        old = self.chunks()
        written = rows = 0
        buf: list[tuple[np.ndarray, list[str], np.ndarray]] = []

        def flush() -> None:
            nonlocal written
            if buf:
                self.append(np.concatenate([b[0] for b in buf]), [h for b in buf for h in b[1]], model_key,
                            np.vstack([b[2] for b in buf]))
                written += 1
                buf.clear()

        for ids, hashes, vecs in self.iter_rows(model_key, keys):
            for lo in range(0, len(ids), chunk_size):
                buf.append((ids[lo: lo + chunk_size], hashes[lo: lo + chunk_size], vecs[lo: lo + chunk_size]))
                rows += len(buf[-1][0])
                if sum(len(b[0]) for b in buf) >= chunk_size:
                    flush()
        flush()
        for chunk in old:
            chunk.unlink(missing_ok=True)
        self._dims.clear()
        return {"chunks_removed": len(old), "chunks_written": written, "rows": rows}

    # -- manifest --------------------------------------------------------------------------------

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        return atomic_write_text(self.root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# The incremental run
# ---------------------------------------------------------------------------------------------


@dataclass
class EmbedReport:
    model_key: str
    dim: int | None
    movies: int
    reused: int
    """Movies whose (movie_id, text_hash, model) was already stored."""
    embedded: int
    """Movies embedded by this run."""
    chunks_written: int
    seconds: float
    """Time spent embedding and writing (model loading excluded)."""
    chunk_paths: list[Path] = field(default_factory=list)

    @property
    def texts_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def embed_items(
    movie_ids: Sequence[int] | np.ndarray,
    texts: Sequence[str],
    text_hashes: Sequence[str],
    embedder: Embedder,
    store: EmbeddingStore,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    log: Log | None = None,
    progress_every_s: float = 30.0,
) -> EmbedReport:
    """Embed the movies whose (movie_id, text_hash) is not yet stored for `embedder.model_key`, one
    chunk of `chunk_size` movies at a time, each chunk appended to `store` as soon as it is done.

    Texts are processed longest first (as `SentenceTransformer.encode` orders them internally), so the
    batches equal those of one `encode` call over all texts: the bookkeeping adds only the index
    read and the chunk writes. An exception keeps every chunk written before it."""
    log = log or (lambda _msg: None)
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    n = len(movie_ids)
    if not (len(texts) == len(text_hashes) == n):
        raise ValueError("movie_ids, texts and text_hashes must have the same length")
    key = embedder.model_key
    done_idx = store.index(key)
    if store.quarantined:
        log(f"embeddings: {len(store.quarantined)} damaged chunk(s) moved to {store.root / '_corrupt'} and their "
            f"movies embedded again: {', '.join(store.quarantined)}")
    done = set(zip(done_idx.column("movie_id").to_pylist(), done_idx.column("text_hash").to_pylist(), strict=True))
    ids = np.asarray(movie_ids, dtype=np.int64)
    todo = [i for i in range(n) if (int(ids[i]), text_hashes[i]) not in done]
    report = EmbedReport(key, None, n, n - len(todo), 0, 0, 0.0)
    stored_dims = {int(d) for d in done_idx.column("dim").unique().to_pylist()}
    if stored_dims:
        report.dim = min(stored_dims)
    if not todo:
        log(f"embeddings: all {n:,} movies already embedded with {key}; nothing to do")
        return report
    if stored_dims and embedder.dim is not None:  # known up front (local models): fail before any work
        store.check_dim(key, int(embedder.dim))
    todo.sort(key=lambda i: -len(texts[i]))
    log(f"embeddings: {len(todo):,} of {n:,} movies to embed with {key} ({report.reused:,} reused), "
        f"chunks of {chunk_size:,}")
    start = time.perf_counter()
    last_progress = start
    for lo in range(0, len(todo), chunk_size):
        sel = todo[lo: lo + chunk_size]
        vectors = embedder.embed([texts[i] for i in sel])
        if vectors.shape[0] != len(sel):
            raise RuntimeError(f"the embedder returned {vectors.shape[0]} vectors for {len(sel)} texts")
        path = store.append(ids[sel].astype(np.int32), [text_hashes[i] for i in sel], key, vectors)
        report.chunk_paths.append(path)
        report.chunks_written += 1
        report.embedded += len(sel)
        report.dim = int(vectors.shape[1])
        now = time.perf_counter()
        if now - last_progress >= progress_every_s and report.embedded < len(todo):
            rate = report.embedded / (now - start)
            log(f"embeddings: {report.embedded:,}/{len(todo):,} ({rate:,.1f} texts/s, "
                f"~{(len(todo) - report.embedded) / rate:,.0f}s left)")
            last_progress = now
    report.seconds = time.perf_counter() - start
    log(f"embeddings: {report.embedded:,} movies embedded in {report.seconds:.1f}s "
        f"({report.texts_per_s:,.1f} texts/s), {report.chunks_written} chunk(s) written")
    return report


# ---------------------------------------------------------------------------------------------
# Checks and the quality signal
# ---------------------------------------------------------------------------------------------


def embedding_stats(store: EmbeddingStore, model_key: str, keys: pa.Table) -> dict[str, Any]:
    """Streaming statistics of the current vectors: rows, dims, NaN rows, norm range, coverage."""
    rows = nan_rows = bad_norm = 0
    dims: set[int] = set()
    norm_min, norm_max = float("inf"), float("-inf")
    for _ids, _h, v in store.iter_rows(model_key, keys):
        rows += len(v)
        dims.add(int(v.shape[1]))
        finite = np.isfinite(v).all(axis=1)
        nan_rows += int((~finite).sum())
        norms = np.linalg.norm(v[finite], axis=1)
        if norms.size:
            norm_min, norm_max = min(norm_min, float(norms.min())), max(norm_max, float(norms.max()))
            bad_norm += int((np.abs(norms - 1.0) > NORM_TOLERANCE).sum())
    movies = keys.num_rows
    return {
        "model": model_key, "rows": rows, "movies": movies, "dims": sorted(dims),
        "coverage": round(rows / movies, 6) if movies else 0.0, "missing": movies - rows,
        "nan_rows": nan_rows, "bad_norm_rows": bad_norm,
        "norm_min": None if rows == nan_rows else round(norm_min, 6),
        "norm_max": None if rows == nan_rows else round(norm_max, 6),
    }


def genre_signal(
    movie_ids: np.ndarray,
    vectors: np.ndarray,
    genres: Mapping[int, Sequence[str]],
    pairs: Sequence[tuple[str, str]] = GENRE_PAIRS,
    min_movies: int = 5,
) -> list[dict[str, Any]]:
    """For each genre pair (A, B): mean cosine between two different movies within A and within B, and
    across A x B; movies listed in both genres are left out. A useful text embedding puts `within`
    above `across` (margin > 0). O(n * dim) per pair: the mean pairwise cosine of a set of unit vectors
    is (|sum|^2 - n) / (n (n - 1)). Pairs with fewer than `min_movies` movies on a side are skipped."""
    pos = {int(m): i for i, m in enumerate(movie_ids)}
    out = []
    for a, b in pairs:
        in_a = [pos[m] for m, g in genres.items() if m in pos and a in g and b not in g]
        in_b = [pos[m] for m, g in genres.items() if m in pos and b in g and a not in g]
        if len(in_a) < min_movies or len(in_b) < min_movies:
            continue
        va, vb = vectors[in_a].astype(np.float64), vectors[in_b].astype(np.float64)
        sa, sb = va.sum(0), vb.sum(0)
        na, nb = len(in_a), len(in_b)
        within_a = (sa @ sa - (va * va).sum()) / (na * (na - 1))
        within_b = (sb @ sb - (vb * vb).sum()) / (nb * (nb - 1))
        within = (within_a + within_b) / 2
        across = (sa @ sb) / (na * nb)
        out.append({"pair": f"{a} / {b}", "movies_a": na, "movies_b": nb, "within_a": round(float(within_a), 4),
                    "within_b": round(float(within_b), 4), "within": round(float(within), 4),
                    "across": round(float(across), 4), "margin": round(float(within - across), 4)})
    return out


def load_item_embeddings(features_dir: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The current item embeddings, for downstream steps (semantic recall, rankers):
    `(movie_ids int32 [n] sorted, vectors float32 [n, dim] L2-normalised, manifest)` — the vectors of
    the model recorded in `<features_dir>/item_embeddings/_manifest.json` for the texts of
    `<features_dir>/item_text.parquet`. Movies without a current vector are absent (see `coverage`)."""
    import pyarrow.parquet as pq

    features_dir = Path(features_dir)
    store = EmbeddingStore(features_dir / "item_embeddings")
    manifest = store.read_manifest()
    if manifest is None:
        raise FileNotFoundError(f"{store.root / MANIFEST} does not exist: materialize `item_embeddings` first")
    keys = pq.read_table(features_dir / "item_text.parquet", columns=["movie_id", "text_hash"])
    movie_ids, vectors = store.load(manifest["model"], keys)
    return movie_ids, vectors, manifest
