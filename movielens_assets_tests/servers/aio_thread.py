"""Run an aiohttp test server from synchronous tests: its own event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ThreadedAioServer:
    """Mixin for aiohttp test servers on 127.0.0.1 (ephemeral port): subclasses define `_app()` and
    `thread_name`; `start()` / `stop()` / `with server:` serve from a private loop in a daemon thread,
    `await _astart()` / `_astop()` from a running loop."""

    thread_name = "aio-test-server"
    port: int | None = None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: Any = None

    def _app(self) -> Any:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    async def _astart(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self._app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> Any:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # pragma: no cover - reported to the caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._astop())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
