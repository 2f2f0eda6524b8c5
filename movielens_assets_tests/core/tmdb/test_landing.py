"""Landing zone of raw TMDb payloads: append-only chunks, latest-per-id, resume, staleness, corruption."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

import pytest

from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.landing import CorruptChunkError, LandingZone
from movielens_assets.core.tmdb.records import FetchResult


def ok(tmdb_id: int, fetched_at: float = 1000.0, **extra) -> FetchResult:
    payload = {"id": tmdb_id, "title": f"Movie {tmdb_id}", **extra}
    return FetchResult(tmdb_id, 200, fetched_at, payload, None)


def not_found(tmdb_id: int, fetched_at: float = 1000.0) -> FetchResult:
    return FetchResult(tmdb_id, 404, fetched_at, None, "404 status_code=34")


def failed(tmdb_id: int, fetched_at: float = 1000.0, status: int = 502) -> FetchResult:
    return FetchResult(tmdb_id, status, fetched_at, None, f"HTTP {status} after 5 attempts")


def write(zone: LandingZone, results, flush_every: int = 500) -> None:
    with zone.writer(flush_every=flush_every) as w:
        for r in results:
            w.append(r)


def digests(zone: LandingZone) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in zone.chunk_paths()}


def latest_rows(zone: LandingZone) -> dict[int, dict]:
    table = zone.latest()
    return {row["tmdb_id"]: row for row in table.to_pylist()}


def test_roundtrip_format_and_flush_every(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path / "raw" / "tmdb")
    write(zone, [ok(1), not_found(2), failed(3), ok(4, softcore=False), ok(5)], flush_every=2)

    chunks = zone.chunk_paths()
    assert len(chunks) == 3  # 2 + 2 + 1 (the remainder flushed on close)
    assert all(p.name.startswith("chunk-") and p.name.endswith(".jsonl.gz") for p in chunks)
    assert [p.name for p in chunks] == sorted(p.name for p in chunks)
    assert not [p for p in zone.root.iterdir() if p not in chunks], "no temporary files left behind"

    lines = gzip.decompress(chunks[0].read_bytes()).decode().splitlines()
    first = json.loads(lines[0])
    assert list(first) == ["tmdb_id", "status", "fetched_at", "error", "payload"]
    assert first == {"tmdb_id": 1, "status": 200, "fetched_at": 1000.0, "error": None,
                     "payload": {"id": 1, "title": "Movie 1"}}
    assert json.loads(lines[1])["status"] == 404 and json.loads(lines[1])["payload"] is None

    rows = latest_rows(zone)
    assert {k: v["outcome"] for k, v in rows.items()} == {
        1: "ok", 2: "not_found", 3: "failed", 4: "ok", 5: "ok"}
    assert rows[3]["error"] == "HTTP 502 after 5 attempts"
    assert zone.latest().schema.field("tmdb_id").type == "int32"

    payloads = {r.result.tmdb_id: r.result.payload for r in zone.iter_latest()}
    assert payloads == {1: {"id": 1, "title": "Movie 1"},
                        4: {"id": 4, "title": "Movie 4", "softcore": False},
                        5: {"id": 5, "title": "Movie 5"}}
    every = {r.result.tmdb_id: r.result.outcome for r in zone.iter_latest(outcomes=None)}
    assert every == {1: "ok", 2: "not_found", 3: "failed", 4: "ok", 5: "ok"}
    assert [r.result.tmdb_id for r in zone.iter_latest(ids={4, 2})] == [4]

    stats = zone.stats()
    assert (stats["ok"], stats["not_found"], stats["failed"]) == (3, 1, 1)
    assert (stats["ids"], stats["records"], stats["chunks"]) == (5, 5, 3)
    assert stats["bytes"] == sum(p.stat().st_size for p in chunks) > 0


def test_append_only_old_chunks_never_rewritten(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [ok(1), ok(2), ok(3)], flush_every=2)
    before = digests(zone)
    assert len(before) == 2

    write(zone, [ok(1, fetched_at=2000.0, title="refreshed"), not_found(4)])
    zone.seed_from_payloads([{"id": 5}, {"id": 6}], fetched_at=3000.0)
    after = digests(zone)

    assert len(after) == 4
    for name, digest in before.items():
        assert after[name] == digest, f"{name} was modified"
    assert latest_rows(zone)[1]["fetched_at"] == 2000.0


def test_latest_per_id_rules(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    # chunk A
    write(zone, [
        ok(1, 100.0, title="old"),
        ok(2, 500.0, title="newer but written first"),
        ok(3, 100.0, title="tie, earlier chunk"),
        ok(4, 100.0, title="good payload"),
        ok(5, 100.0),
        failed(6, 100.0),
        ok(7, 100.0, title="a"),
        ok(7, 100.0, title="b, same chunk, later line"),
    ])
    # chunk B
    write(zone, [
        ok(1, 200.0, title="new"),
        ok(2, 300.0, title="older but written later"),
        ok(3, 100.0, title="tie, later chunk"),
        failed(4, 200.0),  # a transient failure never hides a payload
        not_found(5, 200.0),  # a 404 after a payload is authoritative (deleted / merged)
        ok(6, 200.0),  # a payload after a failure wins
    ])
    titles = {r.result.tmdb_id: r.result.payload["title"] for r in zone.iter_latest()}
    assert titles == {
        1: "new",
        2: "newer but written first",
        3: "tie, later chunk",
        4: "good payload",
        6: "Movie 6",
        7: "b, same chunk, later line",
    }
    rows = latest_rows(zone)
    assert rows[5]["outcome"] == "not_found"
    assert rows[4]["outcome"] == "ok" and rows[4]["fetched_at"] == 100.0
    assert zone.stats()["records"] == 14


def test_failed_only_id_is_failed_and_pending(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [failed(1, 100.0), failed(1, 200.0, status=0)])
    assert latest_rows(zone)[1]["status"] == 0
    assert zone.fetched_ids() == set()
    assert zone.pending([1]) == [1]


def test_resume_after_exception_inside_writer(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    wanted = list(range(1, 11))

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with zone.writer(flush_every=3) as w:
            for tmdb_id in wanted:
                if tmdb_id == 6:
                    raise Boom("crawler crashed")
                w.append(ok(tmdb_id) if tmdb_id != 2 else failed(tmdb_id))

    reopened = LandingZone(tmp_path)  # fresh process view, no cache
    assert reopened.stats()["records"] == 5  # 3 flushed + 2 kept on the way out
    assert reopened.pending(wanted) == [2, 6, 7, 8, 9, 10]

    write(reopened, [ok(t) for t in reopened.pending(wanted)])
    assert reopened.pending(wanted) == []
    assert LandingZone(tmp_path).pending(wanted) == []


def test_killed_process_loses_at_most_the_unflushed_buffer(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    w = zone.writer(flush_every=3)
    for tmdb_id in range(1, 6):
        w.append(ok(tmdb_id))
    assert w.buffered == 2
    del w  # killed: never closed, nothing flushed implicitly

    assert LandingZone(tmp_path).pending(range(1, 8)) == [4, 5, 6, 7]


def test_pending_keeps_order_and_dedupes(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [ok(2)])
    assert zone.pending([5, 2, 3, 5, 1, 3]) == [5, 3, 1]
    assert LandingZone(tmp_path / "empty").pending([1, 2]) == [1, 2]


def test_staleness_and_not_found(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [ok(1, 1000.0), ok(2, 9000.0), not_found(3, 1000.0), not_found(4, 9500.0), failed(5, 9900.0)])
    now = 10_000.0

    assert zone.fetched_ids() == {1, 2, 3, 4}
    assert zone.fetched_ids(include_not_found=False) == {1, 2}
    assert zone.fetched_ids(max_age_s=2000, now=now) == {2, 4}
    assert zone.fetched_ids(max_age_s=1000, now=now) == {2, 4}  # exactly max_age old still fresh
    assert zone.fetched_ids(max_age_s=999, now=now) == {4}
    assert zone.pending([1, 2, 3, 4, 5, 6], max_age_s=2000, now=now) == [1, 3, 5, 6]
    assert zone.pending([1, 2, 3, 4, 5, 6], include_not_found=False) == [3, 4, 5, 6]

    write(zone, [ok(1, now)])  # refreshed
    assert zone.pending([1, 2, 3, 4, 5, 6], max_age_s=2000, now=now) == [3, 5, 6]


def test_seed_from_payloads_is_idempotent(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [not_found(3), failed(4)])
    payloads = [{"id": 1, "title": "a"}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 1, "title": "dup"}]

    assert zone.seed_from_payloads(payloads, fetched_at=5000.0) == 3  # 1, 2 and the failed 4
    chunks = digests(zone)
    assert zone.seed_from_payloads(payloads, fetched_at=6000.0) == 0
    assert digests(zone) == chunks, "a no-op seed writes no chunk"

    rows = latest_rows(zone)
    assert rows[1]["status"] == 200 and rows[1]["fetched_at"] == 5000.0
    assert rows[3]["outcome"] == "not_found"
    assert rows[4]["outcome"] == "ok"
    assert {r.result.tmdb_id: r.result.payload for r in zone.iter_latest()}[1] == {"id": 1, "title": "a"}

    assert zone.seed_from_payloads([{"id": 2}, {"id": 9}], fetched_at=7000.0) == 1
    with pytest.raises(DataValidationError, match=r"payload #1: field 'id' must be an integer"):
        zone.seed_from_payloads([{"id": 10}, {"id": "11"}], fetched_at=1.0)


def _fake_chunk(zone: LandingZone, name: str, data: bytes) -> Path:
    path = zone.root / name
    path.write_bytes(data)
    return path


def test_corrupt_chunk_raises_naming_the_file(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [ok(1), ok(2)])
    good = gzip.compress(b"".join(
        json.dumps({"tmdb_id": i, "status": 200, "fetched_at": 1.0, "error": None,
                    "payload": {"id": i}}).encode() + b"\n" for i in range(3, 50)))
    truncated = _fake_chunk(zone, "chunk-29990101T000000000000Z-truncated.jsonl.gz", good[: len(good) // 2])

    with pytest.raises(CorruptChunkError, match=truncated.name):
        zone.pending([1, 2, 3])
    with pytest.raises(CorruptChunkError, match=truncated.name):
        list(LandingZone(tmp_path).iter_latest())
    assert [name for name, _ in zone.verify()] == [truncated.name]


def test_corrupt_chunk_skip_mode_warns_and_refetches(tmp_path: Path, caplog) -> None:
    zone = LandingZone(tmp_path, on_corrupt="skip")
    write(zone, [ok(1), ok(2)])
    garbage = _fake_chunk(zone, "chunk-29990101T000000000000Z-garbage.jsonl.gz", b"not a gzip at all")
    before = {p.name: p.read_bytes() for p in zone.chunk_paths()}

    with caplog.at_level(logging.WARNING, logger="movielens_assets.core.tmdb.landing"):
        assert zone.pending([1, 2, 3]) == [3]
    assert garbage.name in caplog.text
    assert zone.skipped_chunks == [garbage.name]
    assert zone.stats()["skipped_chunks"] == [garbage.name]
    assert {r.result.tmdb_id for r in zone.iter_latest()} == {1, 2}
    assert {p.name: p.read_bytes() for p in zone.chunk_paths()} == before, "corrupt chunk kept as is"


def test_bad_line_in_valid_gzip_names_chunk_and_line(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    header = {"tmdb_id": 1, "status": 200, "fetched_at": 1.0, "error": None, "payload": {"id": 1}}
    body = json.dumps(header).encode() + b"\n" + b'{"tmdb_id": "x", "status": 200}\n'
    bad = _fake_chunk(zone, "chunk-20000101T000000000000Z-badline.jsonl.gz", gzip.compress(body))
    with pytest.raises(CorruptChunkError, match=rf"{bad.name}: line 2"):
        zone.latest()

    bad.unlink()
    body = (json.dumps(header).encode() + b"\n"
            + b'{"tmdb_id": 2, "status": 200, "fetched_at": 1.0, "error": null, "payload": {"id": 2\n')
    bad2 = _fake_chunk(zone, "chunk-20000101T000000000000Z-truncline.jsonl.gz", gzip.compress(body))
    with pytest.raises(CorruptChunkError, match=rf"{bad2.name}: line 2"):
        zone.latest()


def test_header_fast_path_is_not_fooled_by_error_text(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    tricky = 'upstream said: ,"payload":{"id": 1} and "quotes" \\ backslash'
    write(zone, [FetchResult(1, 502, 10.0, None, tricky), FetchResult(2, 200, 10.0, None, None)])
    rows = latest_rows(LandingZone(tmp_path))
    assert rows[1]["error"] == tricky and rows[1]["outcome"] == "failed"
    assert rows[2]["outcome"] == "failed"  # 200 without payload is not ok (FetchResult.outcome rule)

    # a chunk written by another tool with another key order is read through the slow path
    foreign = (b'{"tmdb_id":3,"payload":{"id":3},"status":200,"fetched_at":5,"error":null}\n'
               b'{"payload":null,"error":"x","status":404,"fetched_at":6,"tmdb_id":4}\n')
    _fake_chunk(zone, "chunk-20000101T000000000000Z-foreign.jsonl.gz", gzip.compress(foreign))
    rows = latest_rows(LandingZone(tmp_path))
    assert (rows[3]["outcome"], rows[3]["fetched_at"], rows[4]["outcome"]) == ("ok", 5.0, "not_found")
    assert [r.result.payload for r in LandingZone(tmp_path).iter_latest()] == [{"id": 3}]


def test_writer_validation(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    with pytest.raises(ValueError):
        zone.writer(flush_every=0)
    w = zone.writer()
    with pytest.raises(DataValidationError, match="tmdb_id 7"):
        w.append(FetchResult(7, 200, 1.0, {"id": 7, "x": float("nan")}, None))
    with pytest.raises(TypeError):
        w.append({"tmdb_id": 1})  # type: ignore[arg-type]
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.append(ok(1))
    assert zone.chunk_paths() == []


def test_compact_keeps_winners_and_is_readable(tmp_path: Path) -> None:
    zone = LandingZone(tmp_path)
    write(zone, [ok(1, 100.0), failed(2, 100.0), ok(3, 100.0)], flush_every=1)
    write(zone, [ok(1, 200.0, title="new"), ok(2, 150.0), not_found(4, 100.0), failed(3, 300.0)])
    latest_before = zone.latest().drop(["chunk", "line"])
    payloads_before = {r.result.tmdb_id: r.result.payload for r in zone.iter_latest()}

    report = zone.compact()
    assert report["chunks_before"] == 4 and report["chunks_after"] == 1
    assert report["records_before"] == 7 and report["records_after"] == 4

    for view in (zone, LandingZone(tmp_path)):
        assert view.latest().drop(["chunk", "line"]).equals(latest_before)
        assert {r.result.tmdb_id: r.result.payload for r in view.iter_latest()} == payloads_before
        assert view.pending([1, 2, 3, 4, 5]) == [5]
    assert zone.compact()["chunks_after"] == 1  # nothing left to merge: no-op
