"""A threaded static HTTP server on 127.0.0.1 for tests: serves bytes from a dict and/or a directory,
counts requests per path and injects faults (truncated body, HTTP status, dropped connection, stall).

    with serve_static({"ml-32m.zip": data, "ml-32m.zip.md5": md5}) as server:
        server.add_fault("ml-32m.zip", Fault("truncate"))          # next request: half the body, then close
        fetch(server.url)                                           # http://127.0.0.1:<port>
        assert server.count("ml-32m.zip") == 2

Paths are given with or without the leading slash. Only GET and HEAD are answered.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

FaultKind = Literal["truncate", "status", "disconnect", "stall"]


@dataclass
class Fault:
    """A fault applied to the next `times` requests of one path (`times=None`: every request).

    - `truncate`: announce the full Content-Length, send `truncate_at` bytes (default: half), close.
    - `status`: answer HTTP `status` (default 500) with a short text body.
    - `disconnect`: close the connection (TCP reset) without any response.
    - `stall`: sleep `delay_s` seconds, then serve normally (to exercise client timeouts).
    """

    kind: FaultKind
    times: int | None = 1
    status: int = 500
    truncate_at: int | None = None
    delay_s: float = 1.0


def _norm(path: str) -> str:
    path = urllib.parse.urlsplit(path).path
    return "/" + urllib.parse.unquote(path).lstrip("/")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait on a stalled handler at shutdown
    owner: StaticHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        path = _norm(self.path)
        fault = owner._record(self.command, path)
        self.close_connection = True
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.delay_s)
        if fault is not None and fault.kind == "disconnect":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if fault is not None and fault.kind == "status":
            self._send_text(fault.status, f"injected fault: HTTP {fault.status}\n", head)
            return
        body = owner._lookup(path)
        if body is None:
            self._send_text(404, f"not found: {path}\n", head)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if fault is not None and fault.kind == "truncate":
            cut = len(body) // 2 if fault.truncate_at is None else min(fault.truncate_at, len(body) - 1)
            body = body[: max(cut, 0)]
        view = memoryview(body)
        try:
            for start in range(0, len(view), 64 * 1024):
                self.wfile.write(view[start : start + 64 * 1024])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_text(self, status: int, text: str, head: bool) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(data)


class StaticHTTPServer:
    """Serve `files` (path -> bytes or str) and, for other paths, files under `root`."""

    def __init__(self, files: Mapping[str, bytes | str] | None = None, root: str | Path | None = None):
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        self._faults: dict[str, list[Fault]] = {}
        self.counts: Counter[str] = Counter()
        """Requests received per path (leading slash included), faulty ones included."""
        self.log: list[tuple[str, str]] = []
        """(method, path) of every request, in order."""
        self.root = Path(root).resolve() if root is not None else None
        for path, data in (files or {}).items():
            self.set_file(path, data)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> StaticHTTPServer:
        if self._httpd is not None:
            return self
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> StaticHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, no trailing slash: http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + _norm(path)

    # -- content and faults
    def set_file(self, path: str, data: bytes | str) -> None:
        with self._lock:
            self._files[_norm(path)] = data.encode() if isinstance(data, str) else bytes(data)

    def remove_file(self, path: str) -> None:
        with self._lock:
            self._files.pop(_norm(path), None)

    def add_fault(self, path: str, fault: Fault) -> None:
        """Queue `fault` for `path`; queued faults apply in order, each for its `times` requests."""
        with self._lock:
            self._faults.setdefault(_norm(path), []).append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- request counters
    def count(self, path: str | None = None) -> int:
        """Requests received for `path`, or in total when `path` is None."""
        with self._lock:
            return sum(self.counts.values()) if path is None else self.counts[_norm(path)]

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    # -- used by the handler
    def _record(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.counts[path] += 1
            self.log.append((method, path))
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault

    def _lookup(self, path: str) -> bytes | None:
        with self._lock:
            if path in self._files:
                return self._files[path]
        if self.root is None:
            return None
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate.read_bytes()


@contextlib.contextmanager
def serve_static(
    files: Mapping[str, bytes | str] | None = None, root: str | Path | None = None
) -> Iterator[StaticHTTPServer]:
    """Start a StaticHTTPServer for the duration of the `with` block."""
    server = StaticHTTPServer(files, root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
