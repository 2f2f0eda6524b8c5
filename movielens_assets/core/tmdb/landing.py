"""Landing zone of raw TMDb responses: append-only, compressed JSON-lines chunks.

Every fetch outcome (200 payload, 404, failure) is stored as one line of a gzip-compressed chunk file
`chunk-<utc yyyymmddThhmmssffffff>Z-<uuid>.jsonl.gz` under `root`:

    {"tmdb_id": 550, "status": 200, "fetched_at": 1767225600.0, "error": null, "payload": {...}}

Rules (see docs/TMDB.md):

- Chunks are written atomically (temporary sibling + rename) and never rewritten; only `compact()`
  removes chunks, after the merged chunk that replaces them is safely in place.
- The state of an id is its *winning* record: the latest *conclusive* record (`ok` or `not_found`)
  by `fetched_at`, ties going to the later chunk (chunk names sort by creation time) and then the
  later line. A `failed` record wins only when the id has no conclusive record at all: a transient
  failure during a refresh never hides a payload that was fetched before.
- A corrupt chunk (bad gzip, truncated stream, a line that is not a record) raises
  `CorruptChunkError` naming the file and line (default, `on_corrupt="raise"`). With
  `on_corrupt="skip"` the whole chunk is ignored with a logged warning, so its ids become pending
  again and are re-fetched; `skipped_chunks` lists them. Corrupt chunks are never deleted.
- Reading streams: a first pass reads only the small record headers (cached per immutable chunk),
  a second pass parses the payloads of the winning records one at a time.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.records import FetchResult, Outcome

log = logging.getLogger(__name__)

CHUNK_PREFIX = "chunk-"
CHUNK_SUFFIX = ".jsonl.gz"
_PAYLOAD_MARKER = b',"payload":'
_HEADER_KEYS = ("tmdb_id", "status", "fetched_at", "error")
_COMPRESSLEVEL = 6  # gzip default 9 is much slower for slightly smaller chunks (not in docs/; no benchmark)

OnCorrupt = Literal["raise", "skip"]


class CorruptChunkError(DataValidationError):
    """A landing-zone chunk cannot be read; the message names the chunk file (and line)."""


def outcome_of(status: int, has_payload: bool) -> Outcome:
    """Same rule as `FetchResult.outcome`, from the stored fields."""
    if status == 200 and has_payload:
        return "ok"
    if status == 404:
        return "not_found"
    return "failed"


@dataclass(frozen=True)
class StoredRecord:
    """One record read back from the landing zone, with where it is stored."""

    result: FetchResult
    chunk: str
    """File name of the chunk (not the full path)."""
    line: int
    """1-based line number inside the (decompressed) chunk."""


@dataclass(frozen=True)
class _Header:
    tmdb_id: int
    status: int
    fetched_at: float
    error: str | None
    has_payload: bool

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.status, self.has_payload)


@dataclass
class _ChunkIndex:
    size: int
    mtime_ns: int
    lines: list[int]
    headers: list[_Header]


@dataclass(frozen=True)
class _Winner:
    rank: tuple[bool, float, int, int]  # (conclusive, fetched_at, chunk position, line)
    chunk: str
    header: _Header


# -- chunk names ------------------------------------------------------------------------------

_name_lock = threading.Lock()
_last_name_us = 0


def _new_chunk_name() -> str:
    """A fresh chunk name whose timestamp strictly increases within this process."""
    global _last_name_us
    with _name_lock:
        now_us = time.time_ns() // 1000
        if now_us <= _last_name_us:
            now_us = _last_name_us + 1
        _last_name_us = now_us
    ts = datetime.fromtimestamp(now_us // 1_000_000, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{CHUNK_PREFIX}{ts}{now_us % 1_000_000:06d}Z-{uuid.uuid4().hex[:12]}{CHUNK_SUFFIX}"


# -- serialisation ----------------------------------------------------------------------------


def _encode(result: FetchResult) -> bytes:
    if not isinstance(result, FetchResult):
        raise TypeError(f"expected a FetchResult, got {type(result).__name__}")
    if type(result.tmdb_id) is not int or type(result.status) is not int:
        raise DataValidationError(
            f"FetchResult.tmdb_id and .status must be int, got {result.tmdb_id!r} / {result.status!r}"
        )
    record = {
        "tmdb_id": result.tmdb_id,
        "status": result.status,
        "fetched_at": float(result.fetched_at),
        "error": result.error,
        "payload": result.payload,  # last key: lets the index pass skip parsing the payload
    }
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"tmdb_id {result.tmdb_id}: record is not JSON-serialisable: {exc}"
        ) from exc
    return text.encode("utf-8") + b"\n"


def _parse_header(raw: bytes, chunk: Path, line: int) -> _Header:
    """Parse the header fields of one line without decoding the payload when possible."""
    obj: Any = None
    cut = raw.find(_PAYLOAD_MARKER)
    stripped = raw.rstrip()
    if cut > 0 and stripped.endswith(b"}"):
        # A `,"payload":` whose quote directly follows a comma cannot be inside a JSON string
        # (quotes in strings are escaped), so the first occurrence is the real key.
        try:
            obj = json.loads(raw[:cut] + b"}")
            has_payload = stripped[cut + len(_PAYLOAD_MARKER) :].lstrip() != b"null}"
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or any(k not in obj for k in _HEADER_KEYS):
            obj = None  # another key order: fall back to a full parse
    if obj is None:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise CorruptChunkError(f"{chunk}: line {line} is not valid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise CorruptChunkError(f"{chunk}: line {line} is not a JSON object")
        has_payload = obj.get("payload") is not None
    missing = [k for k in _HEADER_KEYS if k not in obj]
    if missing:
        raise CorruptChunkError(f"{chunk}: line {line} lacks field(s) {', '.join(missing)}")
    tmdb_id, status, fetched_at, error = (obj[k] for k in _HEADER_KEYS)
    if type(tmdb_id) is not int or type(status) is not int:
        raise CorruptChunkError(f"{chunk}: line {line}: tmdb_id and status must be integers")
    if type(fetched_at) not in (int, float):
        raise CorruptChunkError(f"{chunk}: line {line}: fetched_at must be a number")
    if error is not None and not isinstance(error, str):
        raise CorruptChunkError(f"{chunk}: line {line}: error must be a string or null")
    return _Header(tmdb_id, status, float(fetched_at), error, has_payload)


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) of a chunk; blank lines skipped; gzip errors -> CorruptChunkError."""
    try:
        with gzip.open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield number, raw
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise CorruptChunkError(f"{path}: cannot decompress chunk ({exc})") from exc


# -- writer -----------------------------------------------------------------------------------


class LandingWriter:
    """Buffers records and writes them as new chunk files. Use as a context manager.

    A chunk is written every `flush_every` records, on `flush()`, and on close — also when the
    `with` block exits with an exception, so everything appended is kept. Records still in the
    buffer when the process is killed are lost (at most `flush_every - 1`).
    """

    def __init__(self, zone: LandingZone, flush_every: int = 500) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self._zone = zone
        self._flush_every = flush_every
        self._buffer: list[bytes] = []
        self._headers: list[_Header] = []
        self._lock = threading.Lock()
        self._closed = False
        self.records_written = 0
        self.chunks_written: list[Path] = []

    def __enter__(self) -> LandingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except Exception:
            if exc is None:
                raise
            log.exception("landing zone: could not flush the buffer while handling another error")

    def append(self, result: FetchResult) -> None:
        line = _encode(result)
        header = _Header(
            result.tmdb_id,
            result.status,
            float(result.fetched_at),
            result.error,
            result.payload is not None,
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("LandingWriter is closed")
            self._buffer.append(line)
            self._headers.append(header)
            full = len(self._buffer) >= self._flush_every
        if full:
            self.flush()

    def extend(self, results: Iterable[FetchResult]) -> None:
        for result in results:
            self.append(result)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def flush(self) -> Path | None:
        """Write the buffer as one new chunk; returns its path (None when the buffer was empty)."""
        with self._lock:
            if not self._buffer:
                return None
            lines, headers = self._buffer, self._headers
            path = self._zone.root / _new_chunk_name()
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as raw:
                    with gzip.GzipFile(
                        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_COMPRESSLEVEL
                    ) as gz:
                        gz.writelines(lines)
                    raw.flush()
                    os.fsync(raw.fileno())
            self._buffer, self._headers = [], []
            self.records_written += len(lines)
            self.chunks_written.append(path)
            self._zone._remember(path, headers)
            return path

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True


# -- zone -------------------------------------------------------------------------------------


class LandingZone:
    """The raw TMDb responses under `root` (e.g. `<data>/raw/tmdb/`)."""

    def __init__(self, root: str | os.PathLike[str], on_corrupt: OnCorrupt = "raise") -> None:
        if on_corrupt not in ("raise", "skip"):
            raise ValueError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
        self.root = Path(root)
        self.on_corrupt: OnCorrupt = on_corrupt
        self._cache: dict[str, _ChunkIndex] = {}
        self._cache_lock = threading.Lock()
        self.skipped_chunks: list[str] = []
        """Chunk file names ignored by the last read because they are corrupt (skip mode)."""

    # writing ---------------------------------------------------------------------------------

    def writer(self, flush_every: int = 500) -> LandingWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        return LandingWriter(self, flush_every=flush_every)

    def seed_from_payloads(
        self, payloads: Iterable[dict[str, Any]], fetched_at: float, flush_every: int = 500
    ) -> int:
        """Store `payloads` as status-200 records (offline / synthetic mode); returns how many.

        Ids that already have a conclusive record (ok or not_found) are skipped, as are repeated
        ids within `payloads` (first wins), so seeding twice writes nothing the second time.
        """
        present = self.fetched_ids(include_not_found=True)
        written = 0
        with self.writer(flush_every=flush_every) as writer:
            for position, payload in enumerate(payloads):
                if not isinstance(payload, dict):
                    raise DataValidationError(f"payload #{position} is not a JSON object")
                tmdb_id = payload.get("id")
                if type(tmdb_id) is not int:
                    raise DataValidationError(
                        f"payload #{position}: field 'id' must be an integer, got {tmdb_id!r}"
                    )
                if tmdb_id in present:
                    continue
                present.add(tmdb_id)
                writer.append(FetchResult(tmdb_id, 200, float(fetched_at), payload, None))
                written += 1
        return written

    # reading ---------------------------------------------------------------------------------

    def chunk_paths(self) -> list[Path]:
        """Chunk files, oldest first (names sort by creation time). Temporary files are ignored."""
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if p.name.startswith(CHUNK_PREFIX) and p.name.endswith(CHUNK_SUFFIX) and p.is_file()
        )

    def _remember(self, path: Path, headers: list[_Header]) -> None:
        st = path.stat()
        index = _ChunkIndex(st.st_size, st.st_mtime_ns, list(range(1, len(headers) + 1)), headers)
        with self._cache_lock:
            self._cache[path.name] = index

    def _index_chunk(self, path: Path) -> _ChunkIndex:
        st = path.stat()
        with self._cache_lock:
            cached = self._cache.get(path.name)
        if cached is not None and (cached.size, cached.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return cached
        lines: list[int] = []
        headers: list[_Header] = []
        for number, raw in _iter_lines(path):
            lines.append(number)
            headers.append(_parse_header(raw, path, number))
        index = _ChunkIndex(st.st_size, st.st_mtime_ns, lines, headers)
        with self._cache_lock:
            self._cache[path.name] = index
        return index

    def _indexes(self) -> list[tuple[Path, _ChunkIndex]]:
        paths = self.chunk_paths()
        names = {p.name for p in paths}
        with self._cache_lock:
            for stale in [n for n in self._cache if n not in names]:
                del self._cache[stale]
        out: list[tuple[Path, _ChunkIndex]] = []
        skipped: list[str] = []
        for path in paths:
            try:
                out.append((path, self._index_chunk(path)))
            except CorruptChunkError as exc:
                if self.on_corrupt == "raise":
                    raise
                log.warning("landing zone: skipping corrupt chunk %s", exc)
                skipped.append(path.name)
        self.skipped_chunks = skipped
        return out

    def _winners(self) -> tuple[dict[int, _Winner], int]:
        """Winning record per id, and the number of records read."""
        winners: dict[int, _Winner] = {}
        total = 0
        for position, (path, index) in enumerate(self._indexes()):
            total += len(index.headers)
            for line, header in zip(index.lines, index.headers, strict=True):
                rank = (header.outcome != "failed", header.fetched_at, position, line)
                current = winners.get(header.tmdb_id)
                if current is None or rank > current.rank:
                    winners[header.tmdb_id] = _Winner(rank, path.name, header)
        return winners, total

    def latest(self) -> pa.Table:
        """The winning record per tmdb_id, without payloads, sorted by tmdb_id.

        Columns: tmdb_id INT32, status INT32, outcome VARCHAR, fetched_at DOUBLE (unix s),
        error VARCHAR, chunk VARCHAR, line INT32. Use `iter_latest()` for the payloads.
        """
        winners, _ = self._winners()
        ids = sorted(winners)
        rows = [winners[i] for i in ids]
        return pa.table(
            {
                "tmdb_id": pa.array(ids, pa.int32()),
                "status": pa.array([w.header.status for w in rows], pa.int32()),
                "outcome": pa.array([w.header.outcome for w in rows], pa.string()),
                "fetched_at": pa.array([w.header.fetched_at for w in rows], pa.float64()),
                "error": pa.array([w.header.error for w in rows], pa.string()),
                "chunk": pa.array([w.chunk for w in rows], pa.string()),
                "line": pa.array([w.rank[3] for w in rows], pa.int32()),
            }
        )

    def _iter_winning_lines(
        self, outcomes: Collection[str] | None, ids: Collection[int] | None
    ) -> Iterator[tuple[str, int, bytes]]:
        winners, _ = self._winners()
        wanted: dict[str, set[int]] = {}
        for tmdb_id, w in winners.items():
            if outcomes is not None and w.header.outcome not in outcomes:
                continue
            if ids is not None and tmdb_id not in ids:
                continue
            wanted.setdefault(w.chunk, set()).add(w.rank[3])
        for path in self.chunk_paths():
            lines = wanted.get(path.name)
            if not lines:
                continue
            remaining = len(lines)
            for number, raw in _iter_lines(path):
                if number in lines:
                    yield path.name, number, raw
                    remaining -= 1
                    if remaining == 0:
                        break

    def iter_latest(
        self,
        outcomes: Collection[str] | None = ("ok",),
        ids: Collection[int] | None = None,
    ) -> Iterator[StoredRecord]:
        """Stream the winning record of each id (default: only `ok` ones), payloads parsed.

        Order: chunk order, then line order. Only one payload is decoded at a time.
        `ids` restricts the output (the other payloads are not decoded).
        """
        for chunk, line, raw in self._iter_winning_lines(outcomes, ids):
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                raise CorruptChunkError(
                    f"{self.root / chunk}: line {line} is not valid JSON ({exc})"
                ) from exc
            payload = obj.get("payload")
            if payload is not None and not isinstance(payload, dict):
                raise CorruptChunkError(
                    f"{self.root / chunk}: line {line} (tmdb_id {obj['tmdb_id']}): "
                    "payload is not a JSON object"
                )
            result = FetchResult(
                tmdb_id=obj["tmdb_id"],
                status=obj["status"],
                fetched_at=float(obj["fetched_at"]),
                payload=payload,
                error=obj.get("error"),
            )
            yield StoredRecord(result, chunk, line)

    def fetched_ids(
        self,
        max_age_s: float | None = None,
        include_not_found: bool = True,
        now: float | None = None,
    ) -> set[int]:
        """Ids whose winning record is ok (or not_found: a 404 is final until a refresh) and,
        with `max_age_s`, fetched no longer than `max_age_s` seconds before `now`."""
        winners, _ = self._winners()
        cutoff = None
        if max_age_s is not None:
            cutoff = (time.time() if now is None else now) - max_age_s
        accepted = {"ok", "not_found"} if include_not_found else {"ok"}
        return {
            tmdb_id
            for tmdb_id, w in winners.items()
            if w.header.outcome in accepted and (cutoff is None or w.header.fetched_at >= cutoff)
        }

    def pending(
        self,
        wanted_ids: Iterable[int],
        max_age_s: float | None = None,
        include_not_found: bool = True,
        now: float | None = None,
    ) -> list[int]:
        """`wanted_ids` (first-seen order, duplicates removed) that are missing, failed or stale."""
        done = self.fetched_ids(max_age_s=max_age_s, include_not_found=include_not_found, now=now)
        seen: set[int] = set()
        out: list[int] = []
        for tmdb_id in wanted_ids:
            tmdb_id = int(tmdb_id)
            if tmdb_id in done or tmdb_id in seen:
                continue
            seen.add(tmdb_id)
            out.append(tmdb_id)
        return out

    def stats(self) -> dict[str, Any]:
        """Counts of winning records by outcome, records, chunks and bytes on disk."""
        winners, total = self._winners()
        counts = {"ok": 0, "not_found": 0, "failed": 0}
        for w in winners.values():
            counts[w.header.outcome] += 1
        paths = self.chunk_paths()
        fetched = [w.header.fetched_at for w in winners.values()]
        return {
            **counts,
            "ids": len(winners),
            "records": total,
            "chunks": len(paths),
            "bytes": sum(p.stat().st_size for p in paths),
            "skipped_chunks": list(self.skipped_chunks),
            "oldest_fetched_at": min(fetched) if fetched else None,
            "newest_fetched_at": max(fetched) if fetched else None,
        }

    def verify(self) -> list[tuple[str, str]]:
        """Fully decode every chunk; returns (chunk name, problem) for each unreadable one."""
        problems: list[tuple[str, str]] = []
        for path in self.chunk_paths():
            try:
                for number, raw in _iter_lines(path):
                    _parse_header(raw, path, number)
                    try:
                        json.loads(raw)
                    except ValueError as exc:
                        raise CorruptChunkError(
                            f"{path}: line {number} is not valid JSON ({exc})"
                        ) from exc
            except CorruptChunkError as exc:
                problems.append((path.name, str(exc)))
        return problems

    def compact(self) -> dict[str, int]:
        """Merge all readable chunks into one new chunk holding only the winning record per id.

        The merged chunk is written atomically before any old chunk is deleted, so a crash at any
        point leaves a readable zone (at worst with duplicates, which resolve to the same winners).
        Corrupt chunks (skip mode) are left untouched. Chunks created while compacting are kept.
        Do not compact while a reader iterates payloads.
        """
        indexes = self._indexes()
        old = [path for path, _ in indexes]
        before = {
            "chunks_before": len(old),
            "records_before": sum(len(index.headers) for _, index in indexes),
            "bytes_before": sum(p.stat().st_size for p in old),
        }
        winners, _ = self._winners()
        if len(old) <= 1 and before["records_before"] == len(winners):
            return {**before, "chunks_after": len(old), "records_after": len(winners),
                    "bytes_after": before["bytes_before"]}
        path = self.root / _new_chunk_name()
        headers: list[_Header] = []
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as raw_fh:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw_fh, mtime=0, compresslevel=_COMPRESSLEVEL) as gz:
                    for chunk, line, raw in self._iter_winning_lines(None, None):
                        gz.write(raw if raw.endswith(b"\n") else raw + b"\n")
                        headers.append(_parse_header(raw, self.root / chunk, line))
                raw_fh.flush()
                os.fsync(raw_fh.fileno())
        self._remember(path, headers)
        for stale in old:
            stale.unlink(missing_ok=True)
        return {
            **before,
            "chunks_after": len(self.chunk_paths()),
            "records_after": len(headers),
            "bytes_after": path.stat().st_size,
        }
