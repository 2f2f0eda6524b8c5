"""A local OpenAI-compatible embeddings server (aiohttp.web) on 127.0.0.1 for tests and benchmarks.

    with FakeEmbeddingsAPI(key="sk-test", models={"text-embedding-3-small": 64}) as srv:   # own loop/thread
        OpenAIConfig(base_url=srv.base_url, api_key="sk-test", model="text-embedding-3-small")
        srv.inject("429", "503")          # the next two requests fail like that
        srv.records, srv.max_in_flight

`POST /v1/embeddings` with `{"model", "input": str | [str], "encoding_format"?, "dimensions"?}`:

* Auth: `Authorization: Bearer <key>`, else 401 with OpenAI's envelope — whose message quotes the key
  that was sent (worse than OpenAI, which masks it) so tests can prove the client scrubs it.
* Unknown model -> 404 `model_not_found`; a non-string input -> 400.
* Limits, as providers enforce them: more than `max_inputs` inputs -> 400 ("... exceeds the limit of N
  inputs ..."); more than `max_request_chars` characters in a request -> 413 ("Request too large");
  one input longer than `max_input_chars` -> 400 ("maximum context length ...").
* Vectors are deterministic per (model, text): a seeded normal vector of the model's dimension,
  scaled by 3 (NOT unit length: the client must normalise). `dimensions` truncates. `data` is
  returned in shuffled order (`shuffle=True`) with its `index` fields, as the API allows.
* Faults from an injection queue (`inject`): `"429"` (with `Retry-After: retry_after` unless None),
  a status such as `"500"`/`"502"`/`"503"`, `"reset"` (abort the connection), `"malformed"` (200 with
  truncated JSON), `"slow"` (`slow_s` extra latency). `latency_s` is added to every answer.
* Every request is recorded (`Record`: inputs, characters, status, fault, auth header seen) and the
  maximum number of requests in flight is tracked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from movielens_assets_tests.servers.aio_thread import ThreadedAioServer


@dataclass
class Record:
    t: float
    inputs: int
    chars: int
    status: int = 0
    fault: str | None = None
    authorization: str | None = None


def fake_vector(model: str, text: str, dim: int) -> np.ndarray:
    """The server's (unnormalised) vector for `text`."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\x00{text}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim) * 3.0


class FakeEmbeddingsAPI(ThreadedAioServer):
    thread_name = "fake-embeddings-api"

    def __init__(
        self,
        *,
        key: str = "sk-test-key-0123456789",
        models: dict[str, int] | None = None,
        max_inputs: int = 2048,
        max_request_chars: int = 1_000_000,
        max_input_chars: int = 100_000,
        latency_s: float = 0.0,
        slow_s: float = 2.0,
        retry_after: str | None = "0",
        shuffle: bool = True,
    ) -> None:
        self.key = key
        self.models = dict(models or {"text-embedding-3-small": 64})
        self.max_inputs, self.max_request_chars, self.max_input_chars = max_inputs, max_request_chars, max_input_chars
        self.latency_s, self.slow_s = latency_s, slow_s
        self.retry_after = retry_after
        self.shuffle = shuffle
        self.records: list[Record] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._injected: list[str] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    # -- configuration / queries --------------------------------------------------------------------

    def inject(self, *faults: str) -> None:
        with self._lock:
            self._injected.extend(faults)

    def reset_log(self) -> None:
        with self._lock:
            self.records.clear()
            self.max_in_flight = self.in_flight

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.records]

    def embedded_inputs(self) -> int:
        """Inputs answered with a 200 and a complete body."""
        with self._lock:
            return sum(r.inputs for r in self.records if r.status == 200 and r.fault != "malformed")

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeEmbeddingsAPI is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ----------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/embeddings", self._embeddings)
        return app


    # -- handler ------------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
               ) -> web.Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        inputs = body.get("input") if isinstance(body, dict) else None
        texts = [inputs] if isinstance(inputs, str) else (inputs if isinstance(inputs, list) else [])
        record = Record(time.monotonic(), len(texts), sum(len(t) for t in texts if isinstance(t, str)),
                        authorization=request.headers.get("Authorization"))
        with self._lock:
            self.records.append(record)
            fault = self._injected.pop(0) if self._injected else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        record.fault = fault
        try:
            response = await self._answer(request, body, texts, record, fault)
            record.status = response.status
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, request: web.Request, body: Any, texts: list[Any], record: Record, fault: str | None
                      ) -> web.StreamResponse:
        delay = self.latency_s + (self.slow_s if fault == "slow" else 0.0)
        if delay:
            await asyncio.sleep(delay)
        sent = (record.authorization or "").removeprefix("Bearer ").strip()
        if sent != self.key:
            return self._error(401, f"Incorrect API key provided: {sent}. You can find your API key at "
                                    "https://platform.openai.com/account/api-keys.", "invalid_api_key")
        if fault == "429":
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return self._error(429, "Rate limit reached for requests", "rate_limit_exceeded", headers)
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fault is not None and fault.isdigit():
            return self._error(int(fault), "The server had an error while processing your request.")
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models:
            return self._error(404, f"The model `{model}` does not exist or you do not have access to it.",
                               "model_not_found")
        if not texts or not all(isinstance(t, str) for t in texts):
            return self._error(400, "'input' must be a string or a non-empty array of strings")
        if len(texts) > self.max_inputs:
            return self._error(400, f"'input' has {len(texts)} items, which exceeds the limit of {self.max_inputs} "
                                    "inputs per request")
        if record.chars > self.max_request_chars:
            return self._error(413, f"Request too large: {record.chars} characters, at most "
                                    f"{self.max_request_chars} per request")
        too_long = [i for i, t in enumerate(texts) if len(t) > self.max_input_chars]
        if too_long:
            return self._error(400, f"This model's maximum context length is {self.max_input_chars} characters, "
                                    f"however input {too_long[0]} has {len(texts[too_long[0]])}.",
                               "context_length_exceeded")
        dim = self.models[model]
        dims = body.get("dimensions")
        out_dim = int(dims) if isinstance(dims, int) and 0 < dims <= dim else dim
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(model, t, dim)[:out_dim].tolist()}
                for i, t in enumerate(texts)]
        if self.shuffle:
            random.Random(len(texts)).shuffle(data)
        payload = {"object": "list", "data": data, "model": model,
                   "usage": {"prompt_tokens": record.chars // 4, "total_tokens": record.chars // 4}}
        text = json.dumps(payload)
        if fault == "malformed":
            return web.Response(status=200, text=text[: len(text) // 2], content_type="application/json")
        return web.Response(status=200, text=text, content_type="application/json")
