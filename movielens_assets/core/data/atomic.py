"""Atomic file and directory writes: write to a temporary sibling, then rename.

A failed or interrupted step never leaves a half-written file under the final name, and whatever
was stored there before stays intact until the new version is complete (docs/RELIABILITY.md):

- the temporary sibling is `.<name>.tmp-<pid>-<random>`; one left behind by a killed process (its pid no longer
  alive on this machine) is removed by the next write of the same path, a live writer's is never touched;
- a directory replaces the previous one with one `renameat2(RENAME_EXCHANGE)` where the file system offers it
  (Linux: ext4, xfs, btrfs, tmpfs), so readers see the old or the new directory and never none; elsewhere the old
  one is moved aside first (a moment without the directory). Two writers of the same path both succeed and the
  last rename wins: the result is one writer's complete output, never a mix;
- a full disk (ENOSPC) is re-raised naming the final path and saying that the previous version is kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

_PUBLISH_ATTEMPTS = 20


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` can still write: it exists and is not a zombie (a killed writer whose parent died too
    stays a zombie until PID 1 reaps it, which a container's init may never do)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): signal 0 is all we know
        return True
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary siblings of `path` left by processes that are no longer alive (killed mid-write)."""
    final = Path(path)
    if not final.parent.is_dir():
        return []
    stale = []
    for p in final.parent.glob(f".{final.name}.tmp-*"):
        pid_text = p.name[len(f".{final.name}.tmp-"):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            stale.append(p)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap `a` and `b` atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported or `b` is absent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _publish_dir(tmp: Path, final: Path) -> None:
    """Put directory `tmp` at `final`, replacing what is there; `tmp` holds nothing of value afterwards."""
    for _ in range(_PUBLISH_ATTEMPTS):
        if final.exists() and _exchange(tmp, final):
            return  # tmp now holds the previous version: removed by the caller
        if final.exists():  # no exchange here: move the old one aside (a moment without the directory)
            old = _tmp_sibling(final)
            try:
                os.replace(final, old)
            except FileNotFoundError:
                pass  # another writer moved it first
            else:
                shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, final)
            return
        except OSError as exc:  # another writer published in between: replace theirs
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(errno.EBUSY, f"could not publish {final}: other writers kept replacing it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`.

    On any exception the temporary file (or directory) is removed and `path` is untouched.
    Works for files and for directories (an existing directory at `path` is replaced).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(final):
        _remove(stale)
    tmp = _tmp_sibling(final)
    try:
        try:
            yield tmp
            if tmp.is_dir():
                _publish_dir(tmp, final)
            else:
                os.replace(tmp, final)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, f"No space left on device while writing {final}: nothing was "
                              f"published, the previous version (if any) is kept; free space under {final.parent} "
                              f"and rerun ({exc})") from exc
            raise
    finally:
        _remove(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically; returns the final path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the final path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
