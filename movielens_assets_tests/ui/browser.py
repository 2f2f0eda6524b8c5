"""Helpers for tests that drive a real server and a real headless browser (imported explicitly; the
`browser` fixture lives in conftest.py).

A server is started in its own session (`start_new_session=True`) so that its whole process tree — for
`dagster dev`: webserver, daemon and code servers — can be stopped with one `os.killpg`, and a test that
fails still leaves nothing running (call `stop_process_group` in a `finally` or a fixture teardown).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Names the system Chromium has on PATH (Debian: `chromium`; Ubuntu/others: `chromium-browser`, Chrome).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Where the test tells the user to get one.
NO_CHROMIUM = "no Chromium found: apt-get install chromium"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """The system Chromium (`MOVIELENS_TEST_CHROMIUM` first, then PATH), or None when there is none.
    Never a browser downloaded by `playwright install`."""
    explicit = os.environ.get("MOVIELENS_TEST_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def start_process_group(cmd: Sequence[str], env: Mapping[str, str], log_path: Path,
                        cwd: Path | None = None) -> subprocess.Popen:
    """`cmd` in a new session (its own process group, default signal handling), stdout and stderr appended to
    `log_path`. Stop it with `stop_process_group`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(list(cmd), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reused the id
        return False
    return True


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM to the process group `proc` leads (started by `start_process_group`), wait up to `timeout_s` for
    the whole group to exit, then SIGKILL whatever is left. Safe to call twice or on a dead process."""
    pgid = proc.pid  # a session leader's pgid is its pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _group_alive(pgid):
            if proc.poll() is None:
                try:
                    proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.2)  # the leader exited; its children (same group) are still shutting down
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        pass


def log_tail(log_path: Path, chars: int = 4000) -> str:
    try:
        return log_path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_for(condition: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.5,
             proc: subprocess.Popen | None = None, log_path: Path | None = None) -> T:
    """Poll `condition` until it returns something truthy (returned), failing after `timeout_s` with `what`, or at
    once when `proc` died (with the tail of `log_path`). Exceptions of `condition` count as "not yet"; the
    last one is shown on timeout."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # "not ready yet"
            last_error = exc
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}; log tail:\n"
                                 + (log_tail(log_path) if log_path else ""))
        if time.monotonic() >= deadline:
            tail = f"; log tail:\n{log_tail(log_path)}" if log_path else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: "
                                 f"{last_error!r}){tail}")
        time.sleep(interval_s)


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None,
              log_path: Path | None = None) -> None:
    """Wait until `url` answers 2xx; fails fast with the log's tail if `proc` died first."""
    def ok() -> bool:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return 200 <= resp.status < 300

    wait_for(ok, timeout_s, f"{url} to answer", proc=proc, log_path=log_path)


def graphql(base_url: str, query: str, variables: Mapping[str, Any] | None = None,
            timeout_s: float = 30.0) -> dict[str, Any]:
    """POST `query` to `<base_url>/graphql`; the `data` object, raising on GraphQL errors."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    req = urllib.request.Request(f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            payload = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # a malformed query is a 400 whose body says why
        raise AssertionError(f"GraphQL HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from exc
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def is_png(path: Path, min_bytes: int = 5000) -> bool:
    """A real, non-trivial PNG: the signature and more than `min_bytes` bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > min_bytes
