"""Download, verify and extract GroupLens MovieLens releases (stdlib only; never imports dagster).

Layout on the server (the official one, https://files.grouplens.org/datasets/movielens)::

    {base_url}/{name}.zip        the archive; members live under a top folder `{name}/`
    {base_url}/{name}.zip.md5    its published MD5 (any text holding one 32-hex-digit token)

Layout on disk, under `raw_dir`::

    {name}.zip                   the verified archive (kept: it is never downloaded again)
    {name}.zip.verified          the archive's MD5, written once the archive matched the published one
    {name}/                      the extracted CSVs (ratings.csv, movies.csv, tags.csv, links.csv, ...)
    {name}/.verified             the archive's MD5, written last, inside the atomic extraction

`fetch_release` is idempotent: with `{name}/.verified` present it returns without any network request;
with a verified `{name}.zip` it only extracts; otherwise it downloads (streaming, MD5 computed on the
fly, Content-Length checked, transient failures retried with exponential backoff) into a temporary
sibling that is renamed onto `{name}.zip` only once verified. Extraction goes to a temporary directory
renamed onto `{name}/` at the end, so a failure never damages what was there before.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from movielens_assets.core.data.atomic import atomic_path, atomic_write_text
from movielens_assets.core.data.errors import DatasetNotFoundError, DownloadError

__all__ = [
    "MARKER_NAME",
    "OPTIONAL_FILES",
    "RELEASES",
    "REQUIRED_FILES",
    "Release",
    "fetch_release",
    "is_release_name",
    "parse_md5",
]


@dataclass(frozen=True)
class Release:
    """A GroupLens release in the CSV format shared by ML-20M and later."""

    name: str
    description: str
    approx_zip_mb: int
    """Approximate archive size, for messages only."""
    frozen: bool
    """False for the `ml-latest*` releases, which GroupLens regenerates from time to time."""


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release("ml-32m", "MovieLens 32M (2023-10): 32M ratings, 2M tags, 87k movies, 200k users", 239, True),
        Release("ml-25m", "MovieLens 25M (2019-11): 25M ratings, 1M tags, 62k movies, 162k users", 250, True),
        Release("ml-20m", "MovieLens 20M (2015-03): 20M ratings, 465k tags, 27k movies, 138k users", 190, True),
        Release("ml-latest-small", "MovieLens latest, small: 100k ratings, 9k movies, 600 users", 1, False),
        Release("ml-latest", "MovieLens latest, full (changes over time)", 335, False),
    )
}

REQUIRED_FILES: tuple[str, ...] = ("ratings.csv", "movies.csv")
OPTIONAL_FILES: tuple[str, ...] = ("tags.csv", "links.csv")
MARKER_NAME = ".verified"
"""Name of the marker file, inside the extracted folder, holding the archive's MD5."""

PROGRESS_EVERY_S = 5.0
"""Default minimum interval between two progress log lines of a download."""

_USER_AGENT = "movielens-rec/0.1 (+python urllib)"
_MD5_TOKEN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32}(?![0-9A-Fa-f])")
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_NOT_FOUND_STATUS = frozenset({404, 410})


class _TransientError(DownloadError):
    """A failure worth retrying: connection reset / refused, timeout, 5xx, truncated body."""


class _ChecksumMismatch(DownloadError):
    """The downloaded bytes do not have the published MD5."""


class _BadArchive(DownloadError):
    """The archive (already checksum-verified) is unusable: unsafe members, missing files, not a zip."""


def is_release_name(name: str) -> bool:
    """True when `name` is a known GroupLens release (`ml-32m`, `ml-25m`, ...)."""
    return name in RELEASES


def parse_md5(text: str, filename: str | None = None, *, source: str = "md5 file") -> str:
    """Return the (lower-case) MD5 found in `text`, the body of a `.md5` file.

    Accepts `MD5 (ml-32m.zip) = <hash>`, `<hash>  ml-32m.zip`, a bare hash, any surrounding text.
    When several different hashes appear, the one on the line mentioning `filename` wins.
    Raises DownloadError (naming `source`) when there is no hash or the choice is ambiguous.
    """
    hashes = {m.lower() for m in _MD5_TOKEN.findall(text)}
    if len(hashes) == 1:
        return hashes.pop()
    if not hashes:
        preview = text.strip()[:120]
        raise DownloadError(f"{source}: no 32-hex-digit MD5 found in {preview!r}")
    if filename:
        on_line = {
            m.lower() for line in text.splitlines() if filename in line for m in _MD5_TOKEN.findall(line)
        }
        if len(on_line) == 1:
            return on_line.pop()
    raise DownloadError(
        f"{source}: {len(hashes)} different MD5 values and none attributable to {filename or 'the archive'}"
    )


def _file_md5(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _read_marker(path: Path) -> str | None:
    """The MD5 recorded in a marker file, or None when absent / unreadable / malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = _MD5_TOKEN.findall(text)
    return found[0].lower() if len(found) == 1 else None


def _is_extracted(target: Path) -> bool:
    return _read_marker(target / MARKER_NAME) is not None and all(
        (target / f).is_file() for f in REQUIRED_FILES
    )


# --------------------------------------------------------------------------------------------- HTTP


def _http_failure(exc: BaseException, url: str, release: str) -> DownloadError:
    """Map a urllib / socket exception to DatasetNotFoundError (raised), transient or permanent error."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in _NOT_FOUND_STATUS:
            raise DatasetNotFoundError(
                f"GroupLens release {release!r}: {url} not found (HTTP {exc.code}); "
                f"check the release name and the base URL"
            ) from exc
        msg = f"GET {url} failed: HTTP {exc.code} {exc.reason}"
        if exc.code >= 500 or exc.code in _TRANSIENT_STATUS:
            return _TransientError(msg)
        return DownloadError(msg)
    if isinstance(exc, urllib.error.URLError):
        return _TransientError(f"GET {url} failed: {exc.reason}")
    if isinstance(exc, http.client.IncompleteRead):
        return _TransientError(f"GET {url}: connection closed early ({len(exc.partial)} bytes read)")
    return _TransientError(f"GET {url} failed: {type(exc).__name__}: {exc}")


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


def _open(url: str, release: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only
    except _NETWORK_ERRORS as exc:
        raise _http_failure(exc, url, release) from exc


def _fetch_md5(url: str, release: str, timeout: float) -> str:
    with _open(url, release, timeout) as resp:
        try:
            body = resp.read(64 * 1024)
        except _NETWORK_ERRORS as exc:
            raise _http_failure(exc, url, release) from exc
    return parse_md5(body.decode("utf-8", errors="replace"), f"{release}.zip", source=url)


def _fmt_mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _stream_to(
    url: str,
    dest: Path,
    release: str,
    *,
    timeout: float,
    chunk_size: int,
    progress_every: float,
    log: Callable[[str], None],
) -> tuple[str, int]:
    """Stream `url` into `dest`; return (md5, size). Raises _TransientError on a truncated body."""
    with _open(url, release, timeout) as resp:
        header = resp.headers.get("Content-Length")
        try:
            total: int | None = int(header) if header is not None else None
        except ValueError:
            total = None
        digest = hashlib.md5(usedforsecurity=False)
        done = 0
        start = last_log = time.monotonic()

        def progress(final: bool) -> None:
            elapsed = max(time.monotonic() - start, 1e-9)
            rate = done / elapsed / 1e6
            size = f"{_fmt_mb(done)} / {_fmt_mb(total)} ({100.0 * done / total:.1f}%)" if total else (
                f"{_fmt_mb(done)} (size unknown)"
            )
            verb = "downloaded" if final else "downloading"
            log(f"{release}: {verb} {size} at {rate:.1f} MB/s" + (f" in {elapsed:.1f} s" if final else ""))

        with dest.open("wb") as out:
            while True:
                try:
                    chunk = resp.read(chunk_size)
                except _NETWORK_ERRORS as exc:
                    raise _TransientError(
                        f"GET {url}: transfer interrupted after {done} of "
                        f"{total if total is not None else '?'} bytes ({type(exc).__name__}: {exc})"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                now = time.monotonic()
                if now - last_log >= progress_every and (total is None or done < total):
                    last_log = now
                    progress(final=False)
    if total is not None and done != total:
        raise _TransientError(f"truncated download of {url}: expected {total} bytes, received {done} bytes")
    progress(final=True)
    return digest.hexdigest(), done


def _pause_or_give_up(
    release: str, attempt: int, max_attempts: int, last: DownloadError | None, backoff_s: float,
    log: Callable[[str], None],
) -> None:
    """After failed attempt `attempt`: raise when it was the last one, else log and back off exponentially."""
    if attempt >= max_attempts:
        raise DownloadError(f"{last} (giving up after {max_attempts} attempts)") from None
    delay = backoff_s * 2 ** (attempt - 1)
    log(f"{release}: attempt {attempt}/{max_attempts} failed: {last}; retrying in {delay:.1f} s")
    time.sleep(delay)


def _download_verified(
    release: str,
    base_url: str,
    zip_path: Path,
    *,
    log: Callable[[str], None],
    timeout: float,
    max_attempts: int,
    chunk_size: int,
    backoff_s: float,
    progress_every: float,
) -> str:
    """Download `{release}.zip` onto `zip_path` once its MD5 matches the published one; return the MD5."""
    zip_url = f"{base_url}/{release}.zip"
    md5_url = f"{zip_url}.md5"
    expected: str | None = None
    mismatches = 0
    last: DownloadError | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            if expected is None:
                expected = _fetch_md5(md5_url, release, timeout)
            log(f"{release}: downloading {zip_url} (attempt {attempt}/{max_attempts})")
            with atomic_path(zip_path) as tmp:
                actual, size = _stream_to(
                    zip_url, tmp, release, timeout=timeout, chunk_size=chunk_size,
                    progress_every=progress_every, log=log,
                )
                if actual != expected:
                    raise _ChecksumMismatch(
                        f"checksum mismatch for {zip_path.name} from {zip_url}: "
                        f"expected MD5 {expected}, got {actual} ({size} bytes)"
                    )
            return expected
        except _TransientError as exc:
            last = exc
        except _ChecksumMismatch as exc:
            last = exc
            mismatches += 1
            if mismatches >= 2:
                raise DownloadError(f"{exc} (after {attempt} attempts; giving up)") from None
            expected = None  # the release may have been republished: re-read the published MD5
        _pause_or_give_up(release, attempt, max_attempts, last, backoff_s, log)
    raise AssertionError("unreachable: the last attempt returns or raises")


# ----------------------------------------------------------------------------------------- extraction


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' component"
    if "\x00" in name:
        return "NUL byte"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def _extract(zip_path: Path, target: Path, release: str, md5: str, log: Callable[[str], None]) -> None:
    """Check and extract the members under `{release}/` into `target` atomically; marker written last."""
    top = release
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            unsafe = [(i.filename, r) for i in infos if (r := _unsafe_reason(i))]
            if unsafe:
                listed = ", ".join(f"'{n}' ({r})" for n, r in unsafe[:5])
                raise _BadArchive(f"archive {zip_path} has unsafe members, refusing to extract: {listed}")
            members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
            for info in infos:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if len(parts) >= 2 and parts[0] == top:
                    members.append((info, PurePosixPath(*parts[1:])))
            present = {str(rel) for info, rel in members if not info.is_dir()}
            missing = [f for f in REQUIRED_FILES if f not in present]
            if missing:
                raise _BadArchive(
                    f"archive {zip_path} lacks required members "
                    f"{', '.join(f'{top}/{m}' for m in missing)} "
                    f"(found {len(infos)} members, e.g. {[i.filename for i in infos[:5]]})"
                )
            absent_optional = [f for f in OPTIONAL_FILES if f not in present]
            if absent_optional:
                log(f"{release}: archive has no {', '.join(absent_optional)} (optional)")
            skipped = sum(1 for i in infos if PurePosixPath(i.filename.replace("\\", "/")).parts[:1] != (top,))
            if skipped:
                log(f"{release}: ignoring {skipped} archive members outside {top}/")
            log(f"{release}: extracting {len(present)} files from {zip_path.name}")
            with atomic_path(target) as tmp:
                tmp.mkdir()
                for info, rel in members:
                    dest = tmp.joinpath(*rel.parts)
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                (tmp / MARKER_NAME).write_text(md5 + "\n", encoding="utf-8")
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise _BadArchive(f"archive {zip_path} is not a readable zip file: {exc}") from exc


# ----------------------------------------------------------------------------------------- public API


def fetch_release(
    name: str,
    raw_dir: Path,
    base_url: str,
    *,
    log: Callable[[str], None] = print,
    timeout: float = 60.0,
    max_attempts: int = 3,
    chunk_size: int = 1 << 20,
    backoff_s: float = 1.0,
    progress_every: float = PROGRESS_EVERY_S,
) -> Path:
    """Make sure GroupLens release `name` is downloaded, verified and extracted under `raw_dir`.

    Returns `raw_dir / name`, the directory holding ratings.csv, movies.csv (and tags.csv, links.csv).
    Without network access when already extracted (marker present) or when the verified archive is
    present. Raises DatasetNotFoundError for an unknown release or a 404, DownloadError otherwise.
    `backoff_s` is the first retry delay (doubled each attempt); `progress_every` the minimum number
    of seconds between two progress lines (a final line is always logged).
    """
    if not is_release_name(name):
        raise DatasetNotFoundError(
            f"unknown GroupLens release {name!r}; known releases: {', '.join(RELEASES)}"
        )
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    base_url = base_url.rstrip("/")
    raw_dir = Path(raw_dir)
    target = raw_dir / name
    zip_path = raw_dir / f"{name}.zip"
    zip_marker = raw_dir / f"{name}.zip.verified"

    if _is_extracted(target):
        log(f"{name}: already extracted and verified at {target}")
        return target
    raw_dir.mkdir(parents=True, exist_ok=True)

    md5: str | None = None
    if zip_path.is_file():
        recorded = _read_marker(zip_marker)
        if recorded is None:
            # An archive placed by hand (or a crash between rename and marker): check it against the
            # published MD5, which costs one small request instead of a full download.
            recorded = _fetch_md5_with_retries(
                name, f"{base_url}/{name}.zip.md5", timeout, max_attempts, backoff_s, log
            )
        actual = _file_md5(zip_path)
        if actual == recorded:
            log(f"{name}: archive {zip_path} present and verified (MD5 {actual}); not downloading")
            if _read_marker(zip_marker) != actual:
                atomic_write_text(zip_marker, actual + "\n")
            md5 = actual
        else:
            log(f"{name}: archive {zip_path} has MD5 {actual}, expected {recorded}; downloading again")

    if md5 is None:
        zip_marker.unlink(missing_ok=True)  # never pair a stale marker with a replaced archive
        md5 = _download_verified(
            name, base_url, zip_path, log=log, timeout=timeout, max_attempts=max_attempts,
            chunk_size=chunk_size, backoff_s=backoff_s, progress_every=progress_every,
        )
        atomic_write_text(zip_marker, md5 + "\n")

    try:
        _extract(zip_path, target, name, md5, log)
    except _BadArchive as exc:
        # Verified against the published MD5 yet unusable: drop it so nothing looks verified.
        zip_marker.unlink(missing_ok=True)
        zip_path.unlink(missing_ok=True)
        raise DownloadError(str(exc)) from None
    log(f"{name}: ready at {target}")
    return target


def _fetch_md5_with_retries(
    release: str, url: str, timeout: float, max_attempts: int, backoff_s: float, log: Callable[[str], None]
) -> str:
    last: DownloadError | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            return _fetch_md5(url, release, timeout)
        except _TransientError as exc:
            last = exc
        _pause_or_give_up(release, attempt, max_attempts, last, backoff_s, log)
    raise AssertionError("unreachable: the last attempt returns or raises")
