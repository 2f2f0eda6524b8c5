"""Embedders: model resolution and bad configuration, the sentence-transformers backend (tiny local
model and the packaged all-MiniLM-L6-v2, offline), the OpenAI-compatible backend against a local
fake server (batches, concurrency, retries, splitting, auth, secrets)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from movielens_assets.core.text.embedders import (
    DEFAULT_MODEL,
    EmbeddingAPIError,
    EmbeddingAuthError,
    EmbeddingConfigError,
    OpenAIConfig,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    expected_dim,
    normalize_backend,
    plan_batches,
    resolve_model,
)
from movielens_assets_tests.servers.openai_fake import FakeEmbeddingsAPI, fake_vector

KEY = "sk-test-5ecret-api-key-0123456789"
MODEL = "text-embedding-3-small"
TEXTS = [f"movie {i}: " + "word " * (i % 7) for i in range(40)]


# -- configuration ---------------------------------------------------------------------------------


def test_model_resolution_and_unknown_models(tmp_path, tiny_model_dir):
    for alias in ("", "minilm", "all-MiniLM-L6-v2", DEFAULT_MODEL):
        r = resolve_model(alias)
        assert (r.name, r.source) == (DEFAULT_MODEL, "packaged")
        assert (Path(r.target) / "modules.json").is_file()
    assert resolve_model("BAAI/bge-m3").source == "hub"
    local = resolve_model(str(tiny_model_dir))
    assert local.source == "local" and local.name == str(tiny_model_dir.resolve())
    with pytest.raises(EmbeddingConfigError, match="unknown embedding model 'bge-m3-typo'.*BAAI/bge-m3"):
        resolve_model("bge-m3-typo")
    with pytest.raises(EmbeddingConfigError, match="not a directory"):
        resolve_model(str(tmp_path / "missing-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbeddingConfigError, match="not a model directory"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_BACKEND must be one of"):
        normalize_backend("tensorflow")
    assert normalize_backend("openai-compatible") == "openai"
    assert expected_dim(DEFAULT_MODEL) == 384 and expected_dim("BAAI/bge-m3") == 1024
    assert expected_dim("openai:text-embedding-3-large@dimensions=256") == 256 and expected_dim("x/y") is None


def test_a_hub_model_that_cannot_be_loaded_fails_with_a_hint(monkeypatch):
    import huggingface_hub.constants

    # no network in tests: offline mode fails fast instead of retrying DNS for a minute
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    embedder = SentenceTransformerEmbedder("no-such-org/no-such-model", device="cpu")
    with pytest.raises(EmbeddingConfigError, match="could not load embedding model 'no-such-org/no-such-model' "
                                                   r"\(hub\).*network access"):
        embedder.embed(["x"])


# -- sentence-transformers -------------------------------------------------------------------------


def test_tiny_local_model_through_the_real_loading_code(tiny_model_dir):
    logs: list[str] = []
    embedder = SentenceTransformerEmbedder(str(tiny_model_dir), device="cpu", batch_size=8, max_seq_length=64,
                                           log=logs.append)
    assert embedder.model_key == f"{tiny_model_dir.resolve()}@max_seq_length=64"
    v = embedder.embed(TEXTS)
    assert v.shape == (40, 32) and v.dtype == np.float32 and embedder.dim == 32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embedder.embed(TEXTS[:3]), v[:3], atol=1e-5)  # deterministic
    assert embedder.model.max_seq_length == 64
    assert any("loaded on cpu" in line for line in logs)
    assert embedder.embed([]).shape == (0, 32)


def test_packaged_minilm_loads_offline_and_ranks_related_texts_closer(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    embedder = SentenceTransformerEmbedder(device="cpu")
    v = embedder.embed([
        "A family animated comedy about toys that come to life.",
        "Animated adventure for children with talking toys.",
        "A brutal war drama about soldiers in the trenches.",
    ])
    assert v.shape == (3, 384) and embedder.dim == 384 and embedder.model_key == DEFAULT_MODEL
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


# -- OpenAI-compatible API ---------------------------------------------------------------------------


def api(srv: FakeEmbeddingsAPI, **overrides) -> OpenAIEmbedder:
    cfg = {"base_url": srv.base_url, "api_key": KEY, "model": MODEL, "max_batch": 8, "max_concurrency": 3,
           "backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 4, "timeout_s": 5.0, **overrides}
    return OpenAIEmbedder(OpenAIConfig(**cfg), log=logging.getLogger("test.embedder").info)


def expected(texts: list[str], dim: int = 64) -> np.ndarray:
    v = np.stack([fake_vector(MODEL, t, dim) for t in texts])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_api_embeds_in_order_normalised_batched_and_concurrently():
    with FakeEmbeddingsAPI(key=KEY, latency_s=0.05) as srv:
        embedder = api(srv)
        v = embedder.embed(TEXTS)
        assert v.dtype == np.float32 and v.shape == (40, 64) and embedder.dim == 64
        assert np.allclose(v, expected(TEXTS), atol=1e-6)  # index order restored, normalised
        assert [r.inputs for r in srv.records] == [8] * 5  # capped at max_batch
        assert 1 < srv.max_in_flight <= 3  # concurrent, bounded
        assert {r.authorization for r in srv.records} == {f"Bearer {KEY}"}
        assert embedder.stats["requests"] == 5 and embedder.stats["retries"] == 0


def test_api_dimensions_and_model_key():
    with FakeEmbeddingsAPI(key=KEY) as srv:
        embedder = api(srv, dimensions=16)
        assert embedder.model_key == f"openai:{MODEL}@dimensions=16"
        assert embedder.embed(TEXTS[:3]).shape == (3, 16)


def test_plan_batches_caps_inputs_and_characters():
    assert plan_batches(["aa"] * 5, 2, 100) == [(0, 2), (2, 4), (4, 5)]
    assert plan_batches(["a" * 40, "b" * 40, "c" * 40, "d" * 200, "e"], 10, 100) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert plan_batches([], 3, 10) == []


@pytest.mark.parametrize("faults", [("429", "429"), ("500", "503"), ("reset",), ("malformed", "502")])
def test_api_retries_rate_limits_server_errors_resets_and_malformed_answers(faults):
    with FakeEmbeddingsAPI(key=KEY) as srv:
        srv.inject(*faults)
        embedder = api(srv, max_concurrency=1)
        v = embedder.embed(TEXTS[:8])
        assert np.allclose(v, expected(TEXTS[:8]), atol=1e-6)
        assert embedder.stats["retries"] == len(faults)
        assert embedder.stats["rate_limited"] == faults.count("429")
        assert len(srv.records) == len(faults) + 1


def test_api_gives_up_after_max_attempts_with_a_clear_error():
    with FakeEmbeddingsAPI(key=KEY) as srv:
        srv.inject(*["503"] * 4)
        embedder = api(srv, max_attempts=4)
        with pytest.raises(EmbeddingAPIError, match="failed after 4 attempts: HTTP 503") as err:
            embedder.embed(TEXTS[:4])
        assert err.value.status == 503 and len(srv.records) == 4


def test_too_large_requests_are_split_never_dropped():
    # the provider accepts 3 inputs / 100 characters per request, fewer than we were configured for
    with FakeEmbeddingsAPI(key=KEY, max_inputs=3, max_request_chars=100) as srv:
        texts = [f"text number {i} " + "x" * (i % 3) * 10 for i in range(20)]
        embedder = api(srv, max_batch=16)
        v = embedder.embed(texts)
        assert np.allclose(v, expected(texts), atol=1e-6)
        assert embedder.stats["splits"] > 0 and embedder.stats["truncated"] == 0
        assert srv.embedded_inputs() == 20  # each text embedded exactly once, none dropped
        assert {s for s in srv.statuses()} <= {200, 400, 413}


def test_a_single_overlong_input_is_truncated_not_dropped():
    with FakeEmbeddingsAPI(key=KEY, max_input_chars=50) as srv:
        texts = ["short one", "y" * 180, "short two"]
        embedder = api(srv)
        v = embedder.embed(texts)
        assert v.shape == (3, 64)
        assert np.allclose(v[[0, 2]], expected([texts[0], texts[2]]), atol=1e-6)
        assert np.allclose(v[1], expected(["y" * 45])[0], atol=1e-6)  # 180 -> 90 -> 45 characters
        assert embedder.stats["truncated"] == 2


def test_bad_key_stops_at_once_and_the_key_never_leaks(caplog):
    with FakeEmbeddingsAPI(key="sk-the-right-one") as srv:
        caplog.set_level(logging.INFO)
        embedder = api(srv)
        with pytest.raises(EmbeddingAuthError, match="rejected the API key \\(HTTP 401\\)") as err:
            embedder.embed(TEXTS[:4])
        assert len(srv.records) == 1  # not retried
        # the fake server quotes the key it received in its error message: the client scrubs it
        assert KEY not in str(err.value) and "***" in str(err.value)
        srv.inject("500", "429")
        ok = OpenAIEmbedder(OpenAIConfig(base_url=srv.base_url, api_key="sk-the-right-one", model=MODEL,
                                         backoff_base_s=0.01), log=logging.getLogger("t").info)
        ok.embed(["x"])
        assert "sk-the-right-one" not in repr(ok) and KEY not in repr(embedder)
    assert KEY not in caplog.text and "sk-the-right-one" not in caplog.text
    assert "retry 1/5" in caplog.text


def test_other_client_errors_are_not_retried():
    with FakeEmbeddingsAPI(key=KEY) as srv:
        embedder = api(srv, model="no-such-model")
        with pytest.raises(EmbeddingAPIError, match="HTTP 404: The model `no-such-model` does not exist"):
            embedder.embed(["x"])
        assert len(srv.records) == 1


def test_unreachable_server_and_missing_key():
    embedder = OpenAIEmbedder(OpenAIConfig(base_url="http://127.0.0.1:9/v1", api_key=KEY, model=MODEL,
                                           max_attempts=2, backoff_base_s=0.01, timeout_s=2))
    with pytest.raises(EmbeddingAPIError, match="failed after 2 attempts: Client"):
        embedder.embed(["x"])
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_API_KEY"):
        OpenAIEmbedder(OpenAIConfig(api_key=None))
    with pytest.raises(EmbeddingConfigError, match="http"):
        OpenAIConfig(base_url="api.openai.com", api_key=KEY)


def test_embed_works_from_inside_a_running_event_loop():
    with FakeEmbeddingsAPI(key=KEY) as srv:
        embedder = api(srv)

        async def inside() -> np.ndarray:
            return embedder.embed(TEXTS[:5])  # sync call from async code: runs on a helper thread

        assert asyncio.run(inside()).shape == (5, 64)
