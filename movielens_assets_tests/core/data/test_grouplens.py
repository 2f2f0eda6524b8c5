"""GroupLens download / verify / extract, against a local threaded HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import random
import re
import shutil
import socket
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from movielens_assets.core.data import grouplens
from movielens_assets.core.data.errors import DatasetNotFoundError, DownloadError
from movielens_assets.core.data.grouplens import (
    MARKER_NAME,
    RELEASES,
    fetch_release,
    is_release_name,
    parse_md5,
)
from movielens_assets_tests.servers import Fault, StaticHTTPServer, serve_static

NAME = "ml-latest-small"
ZIP = f"{NAME}.zip"
MD5 = f"{NAME}.zip.md5"

CSV = {
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,3.0,835355493\n",
    "movies.csv": b'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Heat, Again (1995)",Action\n',
    "tags.csv": b"userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n",
    "links.csv": b"movieId,imdbId,tmdbId\n1,0114709,862\n3,0113228,\n",
    "README.txt": b"Summary\n=======\nA tiny test release.\n",
}


def make_zip(top: str = NAME, files: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip shaped like a GroupLens release: a `top/` directory entry then `top/<file>` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        for fname, data in (CSV if files is None else files).items():
            zf.writestr(f"{top}/{fname}", data)
        for member, data in (extra or {}).items():
            zf.writestr(member, data)
    return buf.getvalue()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def bsd_md5(data: bytes, name: str = ZIP) -> str:
    return f"MD5 ({name}) = {md5_of(data)}\n"


@pytest.fixture
def archive() -> bytes:
    return make_zip()


@pytest.fixture
def server(archive: bytes) -> Iterator[StaticHTTPServer]:
    with serve_static({ZIP: archive, MD5: bsd_md5(archive)}) as srv:
        yield srv


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    return tmp_path / "raw"


class Logs(list):
    def text(self) -> str:
        return "\n".join(self)


def fetch(server: StaticHTTPServer, raw_dir: Path, logs: list[str] | None = None, **kw) -> Path:
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("timeout", 5.0)
    return fetch_release(NAME, raw_dir, server.url, log=(logs if logs is not None else []).append, **kw)


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def assert_extracted(target: Path, archive: bytes) -> None:
    for fname, data in CSV.items():
        assert (target / fname).read_bytes() == data, fname
    assert (target / MARKER_NAME).read_text().strip() == md5_of(archive)


def assert_no_temp_files(raw_dir: Path) -> None:
    leftovers = [p for p in listing(raw_dir) if "tmp" in p or p.startswith(".")]
    assert leftovers == [], leftovers


# --------------------------------------------------------------------------------------------- basics


def test_release_names() -> None:
    for name in ("ml-32m", "ml-25m", "ml-20m", "ml-latest-small", "ml-latest"):
        assert name in RELEASES and is_release_name(name)
        assert RELEASES[name].name == name
    assert not is_release_name("ml-100k")
    assert not is_release_name("synthetic-small")


def test_unknown_release_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        fetch_release("ml-999m", tmp_path, "http://127.0.0.1:9")
    msg = str(err.value)
    assert "ml-999m" in msg
    for name in RELEASES:
        assert name in msg
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ happy path


def test_happy_path_extracts_verifies_and_marks(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    target = fetch(server, raw_dir)
    assert target == raw_dir / NAME
    assert_extracted(target, archive)
    # no top-folder nesting, nothing extra
    assert listing(target) == set(CSV) | {MARKER_NAME}
    assert (raw_dir / ZIP).read_bytes() == archive
    assert (raw_dir / f"{ZIP}.verified").read_text().strip() == md5_of(archive)
    assert listing(raw_dir) == {NAME, ZIP, f"{ZIP}.verified"} | {f"{NAME}/{f}" for f in listing(target)}
    assert server.count(ZIP) == 1 and server.count(MD5) == 1


def test_second_call_makes_no_request(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    fetch(server, raw_dir)
    server.reset_counts()
    logs = Logs()
    assert fetch(server, raw_dir, logs) == raw_dir / NAME
    assert server.count() == 0
    assert "already extracted" in logs.text()
    # even with no server at all (port 9 = discard, nothing listens on it)
    assert fetch_release(NAME, raw_dir, "http://127.0.0.1:9", log=lambda _: None) == raw_dir / NAME
    assert_extracted(raw_dir / NAME, archive)


def test_extracted_without_marker_is_not_trusted(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    """A folder without `.verified` (an interrupted older run, a hand copy) is replaced, stale files gone."""
    stale = raw_dir / NAME
    stale.mkdir(parents=True)
    (stale / "ratings.csv").write_bytes(b"stale")
    (stale / "movies.csv").write_bytes(b"stale")
    (stale / "junk.txt").write_bytes(b"junk")
    fetch(server, raw_dir)
    assert_extracted(stale, archive)
    assert not (stale / "junk.txt").exists()
    assert server.count(ZIP) == 1


def test_verified_zip_reextracted_without_download(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    fetch(server, raw_dir)
    shutil.rmtree(raw_dir / NAME)
    server.reset_counts()
    logs = Logs()
    fetch(server, raw_dir, logs)
    assert server.count() == 0
    assert_extracted(raw_dir / NAME, archive)
    assert "not downloading" in logs.text()


def test_zip_without_marker_checked_against_published_md5(
    server: StaticHTTPServer, raw_dir: Path, archive: bytes
) -> None:
    """A hand-placed archive costs one small md5 request, not a download."""
    raw_dir.mkdir()
    (raw_dir / ZIP).write_bytes(archive)
    fetch(server, raw_dir)
    assert server.count(MD5) == 1 and server.count(ZIP) == 0
    assert_extracted(raw_dir / NAME, archive)
    assert (raw_dir / f"{ZIP}.verified").read_text().strip() == md5_of(archive)


def test_corrupted_zip_with_marker_is_downloaded_again(
    server: StaticHTTPServer, raw_dir: Path, archive: bytes
) -> None:
    fetch(server, raw_dir)
    shutil.rmtree(raw_dir / NAME)
    (raw_dir / ZIP).write_bytes(archive[:-10] + b"0123456789")  # bit rot; marker still says verified
    server.reset_counts()
    fetch(server, raw_dir)
    assert server.count(ZIP) == 1
    assert (raw_dir / ZIP).read_bytes() == archive
    assert_extracted(raw_dir / NAME, archive)


# -------------------------------------------------------------------------------------- checksum / md5


def test_wrong_checksum_fails_and_leaves_nothing(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    wrong = "0" * 32
    server.set_file(MD5, f"{wrong}  {ZIP}\n")
    # pre-existing (unverified) extracted data must survive the failure untouched
    old = raw_dir / NAME
    old.mkdir(parents=True)
    (old / "ratings.csv").write_bytes(b"old ratings")
    before = {p: (old / p).read_bytes() for p in listing(old)}

    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir, max_attempts=5)
    msg = str(err.value)
    assert ZIP in msg and wrong in msg and md5_of(archive) in msg
    assert server.count(ZIP) == 2  # retried once, not max_attempts times
    assert not (raw_dir / ZIP).exists()
    assert not (raw_dir / f"{ZIP}.verified").exists()
    assert {p: (old / p).read_bytes() for p in listing(old)} == before
    assert listing(raw_dir) == {NAME, f"{NAME}/ratings.csv"}


def test_checksum_mismatch_recovers_when_republished(
    server: StaticHTTPServer, raw_dir: Path, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry after a mismatch re-reads the published md5 (ml-latest is republished in place)."""
    good = bsd_md5(archive)
    server.set_file(MD5, "f" * 32 + "\n")
    calls = {"n": 0}
    real = grouplens._fetch_md5

    def flaky_md5(url: str, release: str, timeout: float) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            server.set_file(MD5, good)
        return real(url, release, timeout)

    monkeypatch.setattr(grouplens, "_fetch_md5", flaky_md5)
    fetch(server, raw_dir)
    assert server.count(MD5) == 2 and server.count(ZIP) == 2
    assert_extracted(raw_dir / NAME, archive)


@pytest.mark.parametrize(
    "template",
    [
        "MD5 ({zip}) = {h}\n",  # BSD `md5`
        "{h}  {zip}\n",  # GNU `md5sum`
        "{h}",  # bare
        "{H}\r\n",  # upper case, CRLF
        "\ufeffchecksum of {zip}:\n\t{h} \n-- generated\n",  # BOM, surrounding prose
    ],
)
def test_md5_file_formats(template: str, server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    h = md5_of(archive)
    server.set_file(MD5, template.format(zip=ZIP, h=h, H=h.upper()).encode("utf-8"))
    fetch(server, raw_dir)
    assert (raw_dir / NAME / MARKER_NAME).read_text().strip() == h


def test_parse_md5_unit() -> None:
    h, other = "d41d8cd98f00b204e9800998ecf8427e", "0123456789abcdef0123456789abcdef"
    assert parse_md5(f"MD5 (ml-32m.zip) = {h}") == h
    assert parse_md5(f"{h.upper()}  ml-32m.zip") == h
    # several hashes: the one on the archive's line wins
    assert parse_md5(f"{other}  ml-25m.zip\n{h}  ml-32m.zip\n", "ml-32m.zip") == h
    with pytest.raises(DownloadError, match="different MD5"):
        parse_md5(f"{other}  a.zip\n{h}  b.zip\n", "ml-32m.zip")
    # 33 or 31 hex digits are not an MD5
    with pytest.raises(DownloadError, match="no 32-hex-digit MD5"):
        parse_md5(h + "0")
    with pytest.raises(DownloadError, match="no 32-hex-digit MD5"):
        parse_md5(h[:-1])


def test_md5_file_without_hash_is_a_clear_error(server: StaticHTTPServer, raw_dir: Path) -> None:
    server.set_file(MD5, "<html><body>Service temporarily unavailable</body></html>")
    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir)
    assert "no 32-hex-digit MD5" in str(err.value) and server.url_for(MD5) in str(err.value)
    assert server.count(ZIP) == 0
    assert not raw_dir.exists() or listing(raw_dir) == set()


# ------------------------------------------------------------------------------ transient failures / 404


def test_truncated_download_fails_after_retries(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    server.add_fault(ZIP, Fault("truncate", times=None, truncate_at=100))
    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir, max_attempts=3)
    msg = str(err.value)
    assert server.url_for(ZIP) in msg
    assert f"expected {len(archive)} bytes" in msg and "received 100 bytes" in msg
    assert server.count(ZIP) == 3
    assert listing(raw_dir) == set()  # no partial zip, no temp file


def test_truncation_is_retried_with_backoff(
    server: StaticHTTPServer, raw_dir: Path, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(grouplens.time, "sleep", sleeps.append)
    server.add_fault(ZIP, Fault("truncate", times=2))
    logs = Logs()
    fetch(server, raw_dir, logs, backoff_s=0.5)
    assert server.count(ZIP) == 3
    assert sleeps == [0.5, 1.0]  # exponential
    assert_extracted(raw_dir / NAME, archive)
    assert "truncated download" in logs.text()
    assert_no_temp_files(raw_dir)


def test_transient_truncation_then_success(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    server.add_fault(ZIP, Fault("truncate", times=1))
    fetch(server, raw_dir)
    assert server.count(ZIP) == 2
    assert (raw_dir / ZIP).read_bytes() == archive
    assert_extracted(raw_dir / NAME, archive)
    assert_no_temp_files(raw_dir)


@pytest.mark.parametrize("fault", [Fault("status", status=503), Fault("disconnect")], ids=["503", "reset"])
def test_server_errors_and_resets_are_retried(
    fault: Fault, server: StaticHTTPServer, raw_dir: Path, archive: bytes
) -> None:
    server.add_fault(ZIP, fault)
    server.add_fault(MD5, Fault(fault.kind, status=fault.status))
    fetch(server, raw_dir)
    assert server.count(ZIP) == 2
    assert_extracted(raw_dir / NAME, archive)


def test_persistent_5xx_gives_up(server: StaticHTTPServer, raw_dir: Path) -> None:
    server.add_fault(ZIP, Fault("status", status=502, times=None))
    with pytest.raises(DownloadError, match="HTTP 502"):
        fetch(server, raw_dir, max_attempts=2)
    assert server.count(ZIP) == 2
    assert listing(raw_dir) == set()


def test_timeout_is_retried(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    server.add_fault(ZIP, Fault("stall", delay_s=1.0))
    fetch(server, raw_dir, timeout=0.3)
    assert server.count(ZIP) == 2
    assert_extracted(raw_dir / NAME, archive)


def test_connection_refused_is_retried_then_fails(raw_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(grouplens.time, "sleep", sleeps.append)
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        fetch_release(NAME, raw_dir, f"http://127.0.0.1:{port}", log=lambda _: None, backoff_s=0.25)
    assert f"127.0.0.1:{port}/{MD5}" in str(err.value) and "3 attempts" in str(err.value)
    assert sleeps == [0.25, 0.5]
    assert listing(raw_dir) == set()


def test_client_error_is_not_retried(server: StaticHTTPServer, raw_dir: Path) -> None:
    server.add_fault(ZIP, Fault("status", status=403, times=None))
    with pytest.raises(DownloadError, match="HTTP 403"):
        fetch(server, raw_dir, max_attempts=3)
    assert server.count(ZIP) == 1


@pytest.mark.parametrize("missing", [ZIP, MD5])
def test_404_is_dataset_not_found(missing: str, server: StaticHTTPServer, raw_dir: Path) -> None:
    server.remove_file(missing)
    with pytest.raises(DatasetNotFoundError) as err:
        fetch(server, raw_dir, max_attempts=3)
    msg = str(err.value)
    assert server.url_for(missing) in msg and NAME in msg
    assert server.count(missing) == 1  # not retried
    assert not (raw_dir / NAME).exists() and not (raw_dir / ZIP).exists()


# -------------------------------------------------------------------------------------- archive checks


def serve_archive(server: StaticHTTPServer, data: bytes) -> None:
    server.set_file(ZIP, data)
    server.set_file(MD5, bsd_md5(data))


@pytest.mark.parametrize(
    "member", [f"{NAME}/../../evil.txt", "/tmp/evil-abs.txt", f"{NAME}/..\\..\\evil-win.txt", "C:/evil.txt"]
)
def test_zip_slip_member_rejected(member: str, server: StaticHTTPServer, raw_dir: Path) -> None:
    data = make_zip(extra={member: b"pwned"})
    serve_archive(server, data)
    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir)
    assert "unsafe" in str(err.value) and member in str(err.value)
    assert not (raw_dir / NAME).exists()
    assert not any(raw_dir.parent.rglob("evil*"))
    assert not Path("/tmp/evil-abs.txt").exists()
    assert not (raw_dir / ZIP).exists()  # an unusable archive is not kept as "verified"
    assert not (raw_dir / f"{ZIP}.verified").exists()


def test_symlink_member_rejected(server: StaticHTTPServer, raw_dir: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for fname, content in CSV.items():
            zf.writestr(f"{NAME}/{fname}", content)
        link = zipfile.ZipInfo(f"{NAME}/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    serve_archive(server, buf.getvalue())
    with pytest.raises(DownloadError, match="symbolic link"):
        fetch(server, raw_dir)
    assert not (raw_dir / NAME).exists()


def test_archive_missing_ratings_is_a_clear_error(server: StaticHTTPServer, raw_dir: Path) -> None:
    files = {k: v for k, v in CSV.items() if k != "ratings.csv"}
    serve_archive(server, make_zip(files=files))
    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir)
    msg = str(err.value)
    assert str(raw_dir / ZIP) in msg and f"{NAME}/ratings.csv" in msg and "movies.csv" not in msg.split("found")[0]
    assert not (raw_dir / NAME).exists()
    assert not (raw_dir / ZIP).exists()


def test_archive_with_wrong_top_folder_is_rejected(server: StaticHTTPServer, raw_dir: Path) -> None:
    serve_archive(server, make_zip(top="ml-other"))
    with pytest.raises(DownloadError) as err:
        fetch(server, raw_dir)
    assert f"{NAME}/ratings.csv" in str(err.value) and f"{NAME}/movies.csv" in str(err.value)
    assert not (raw_dir / NAME).exists()


def test_optional_files_may_be_absent(server: StaticHTTPServer, raw_dir: Path) -> None:
    files = {k: CSV[k] for k in ("ratings.csv", "movies.csv")}
    data = make_zip(files=files, extra={"__MACOSX/._junk": b"x"})
    serve_archive(server, data)
    logs = Logs()
    target = fetch(server, raw_dir, logs)
    assert listing(target) == {"ratings.csv", "movies.csv", MARKER_NAME}
    assert "tags.csv, links.csv (optional)" in logs.text()
    assert "ignoring 1 archive members" in logs.text()


def test_not_a_zip_is_a_clear_error(server: StaticHTTPServer, raw_dir: Path) -> None:
    serve_archive(server, b"this is not a zip file" * 10)
    with pytest.raises(DownloadError, match="not a readable zip"):
        fetch(server, raw_dir)
    assert listing(raw_dir) == set()


def test_failed_reextraction_keeps_previous_release(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    """A bad new archive never damages a previously extracted (unmarked) folder."""
    old = raw_dir / NAME
    old.mkdir(parents=True)
    (old / "ratings.csv").write_bytes(b"previous")
    serve_archive(server, make_zip(extra={f"{NAME}/../escape.csv": b"x"}))
    with pytest.raises(DownloadError):
        fetch(server, raw_dir)
    assert listing(old) == {"ratings.csv"} and (old / "ratings.csv").read_bytes() == b"previous"


# ---------------------------------------------------------------------------------------------- logging

_PROGRESS = re.compile(r"([\d.,]+) MB / ([\d.,]+) MB \(([\d.]+)%\) at [\d.]+ MB/s")


def test_progress_lines(server: StaticHTTPServer, raw_dir: Path, archive: bytes) -> None:
    big = make_zip(files={**CSV, "genome-scores.csv": random.Random(0).randbytes(1 << 20)})  # incompressible
    serve_archive(server, big)
    logs = Logs()
    fetch(server, raw_dir, logs, chunk_size=64 * 1024, progress_every=0.0)
    lines = [m for line in logs if (m := _PROGRESS.search(line))]
    assert len(lines) >= 3, logs
    percents = [float(m.group(3)) for m in lines]
    assert percents == sorted(percents) and percents[-1] == 100.0 and percents[0] < 100.0
    assert "downloaded" in [line for line in logs if _PROGRESS.search(line)][-1]


def test_progress_is_throttled_but_final_line_always_logged(server: StaticHTTPServer, raw_dir: Path) -> None:
    big = make_zip(files={**CSV, "genome-scores.csv": random.Random(0).randbytes(1 << 20)})
    serve_archive(server, big)
    logs = Logs()
    fetch(server, raw_dir, logs, chunk_size=16 * 1024)  # default interval: seconds, download takes ms
    progress = [line for line in logs if _PROGRESS.search(line)]
    assert len(progress) == 1 and "(100.0%)" in progress[0] and "downloaded" in progress[0]
