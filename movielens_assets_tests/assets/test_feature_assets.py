"""The features group end to end, in process: item_text -> item_embeddings with a tiny local model
(synthetic-tiny, with TMDb data), the packaged all-MiniLM-L6-v2 offline (a directory dataset without
TMDb data), the OpenAI-compatible backend against a local fake server, and bad configurations."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.text.embedders import DEFAULT_MODEL
from movielens_assets.definitions import build_definitions
from movielens_assets.settings import Settings, load_settings
from movielens_assets_tests.core.text.tiny_model import build_tiny_model
from movielens_assets_tests.helpers import make_settings, materialize_all, write_movielens_dir
from movielens_assets_tests.servers.openai_fake import FakeEmbeddingsAPI

KEY = "sk-feature-test-SECRET-0123456789abcdef"
FEATURES = "group:features"
EMBEDDING_CHECKS = {"item_embeddings:dimension_matches_model", "item_embeddings:no_nan",
                    "item_embeddings:unit_norm", "item_embeddings:coverage", "item_text:one_text_per_movie"}


def mats(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {f"{c.asset_key.to_user_string()}:{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events
                     if e.event_type_value == "STEP_FAILURE")


def log_text(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(repr(e) for e in instance.all_logs(result.run_id))


def run_without_checks(settings: Settings, instance: dg.DagsterInstance, selection: str) -> None:
    """Upstream assets only (their checks are other modules' business): faster."""
    defs = build_definitions(settings)
    keys = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(keys), asset_check_selection=set()
    )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success, failure_text(result)


def store_dir(settings: Settings):
    return settings.data_dir / "features" / "item_embeddings"


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_synthetic_tiny_with_tmdb_and_a_local_model_then_incremental_reruns(tmp_path, instance, tiny_model_dir):
    settings = make_settings(tmp_path, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir),
                             EMBEDDING_CHUNK_SIZE="300", MOVIELENS_DEVICE="cpu")
    run_without_checks(settings, instance, "key:movielens_raw or key:movies or key:tags or key:links or group:tmdb")
    result = materialize_all(settings, instance, FEATURES)
    assert result.success, failure_text(result)
    m = mats(result)
    text = m["item_text"]
    assert text["dagster/row_count"].value == 800 and text["template_version"].value == "item-text-v1"
    assert text["with_tmdb_share"].value > 0.9 and text["with_tags"].value > 0
    assert "note" not in text
    emb = m["item_embeddings"]
    assert emb["dagster/row_count"].value == 800 and emb["dim"].value == 32
    assert emb["model"].value == str(tiny_model_dir.resolve()) and emb["device"].value == "cpu"
    assert emb["embedded_share"].value == 1.0 and emb["embedded_this_run"].value == 800
    assert emb["chunks_written"].value == 3 and emb["texts_per_s"].value > 0
    assert "within" in emb["genre_signal"].value and "genre_signal_min_margin" in emb
    assert emb["path"].value.endswith("features/item_embeddings")
    evaluated = checks(result)
    assert EMBEDDING_CHECKS <= set(evaluated) and all(evaluated.values()), evaluated
    manifest = json.loads((store_dir(settings) / "_manifest.json").read_text())
    assert (manifest["model"], manifest["dim"], manifest["embedded"]) == (str(tiny_model_dir.resolve()), 32, 800)
    chunks = sorted(store_dir(settings).glob("chunk-*.parquet"))
    stamps = [(c.name, c.stat().st_mtime_ns) for c in chunks]

    # nothing changed: nothing embedded, no chunk written or rewritten
    again = materialize_all(settings, instance, FEATURES)
    assert again.success, failure_text(again)
    m2 = mats(again)
    assert m2["item_text"]["changes_unchanged"].value == 800 and m2["item_text"]["changes_changed"].value == 0
    assert (m2["item_embeddings"]["embedded_this_run"].value, m2["item_embeddings"]["reused"].value) == (0, 800)
    assert [(c.name, c.stat().st_mtime_ns) for c in sorted(store_dir(settings).glob("chunk-*.parquet"))] == stamps
    assert all(checks(again).values())

    # another model configuration (a token limit): everything re-embedded under a new key; compacted
    changed = make_settings(tmp_path, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir),
                            EMBEDDING_MAX_SEQ_LENGTH="64", EMBEDDING_CHUNK_SIZE="1000")
    defs = build_definitions(changed)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("item_embeddings")})
    third = job.execute_in_process(instance=instance, raise_on_error=False, run_config={
        "ops": {"item_embeddings": {"config": {"compact": True}}}})
    assert third.success, failure_text(third)
    e3 = mats(third)["item_embeddings"]
    assert e3["embedded_this_run"].value == 800 and e3["model"].value.endswith("@max_seq_length=64")
    assert e3["compaction"].value == {"chunks_removed": 4, "chunks_written": 1, "rows": 800}
    assert e3["store_rows"].value == 800 and all(checks(third).values())


def test_packaged_minilm_offline_on_a_dataset_without_tmdb_or_tags(tmp_path, instance, offline):
    src = write_movielens_dir(tmp_path / "csv", tags=False, links=False)
    settings = make_settings(tmp_path, str(src))  # EMBEDDING_MODEL unset: the packaged default
    run_without_checks(settings, instance, "key:movielens_raw or key:movies or key:tags")  # no TMDb tables at all
    result = materialize_all(settings, instance, FEATURES)
    assert result.success, failure_text(result)
    m = mats(result)
    assert "no TMDb data" in m["item_text"]["note"].value and m["item_text"]["with_tmdb"].value == 0
    texts = pq.read_table(settings.data_dir / "features" / "item_text.parquet").column("text").to_pylist()
    assert texts[0] == "Toy Story (1995)\nGenres: Adventure, Animation, Children, Comedy, Fantasy."
    emb = m["item_embeddings"]
    assert (emb["model"].value, emb["dim"].value, emb["dagster/row_count"].value) == (DEFAULT_MODEL, 384, 4)
    assert emb["backend"].value == "sentence-transformers"
    assert all(checks(result).values())


def api_env(srv: FakeEmbeddingsAPI, **extra: str) -> dict[str, str]:
    return {"EMBEDDING_BACKEND": "openai", "EMBEDDING_API_BASE_URL": srv.base_url, "EMBEDDING_API_KEY": KEY,
            "EMBEDDING_MODEL": "fake-embed", "EMBEDDING_API_MAX_BATCH": "2", "EMBEDDING_API_MAX_CONCURRENCY": "2",
            **extra}


def test_openai_compatible_backend_with_rate_limits_and_server_errors(tmp_path, instance):
    with FakeEmbeddingsAPI(key=KEY, models={"fake-embed": 24}) as srv:
        src = write_movielens_dir(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **api_env(srv))
        run_without_checks(settings, instance, "key:movies or key:tags")
        srv.inject("429", "503")
        result = materialize_all(settings, instance, FEATURES)
        assert result.success, failure_text(result)
        emb = mats(result)["item_embeddings"]
        assert (emb["model"].value, emb["dim"].value, emb["backend"].value) == ("openai:fake-embed", 24, "openai")
        assert emb["device"].value == "remote" and emb["dagster/row_count"].value == 4
        assert emb["api"].value["retries"] == 2 and emb["api"].value["rate_limited"] == 1
        assert emb["embedder"].value["max_batch"] == 2 and max(r.inputs for r in srv.records) == 2
        assert all(checks(result).values())
        assert KEY not in log_text(instance, result)
        # rerun: zero requests
        srv.reset_log()
        again = materialize_all(settings, instance, FEATURES)
        assert again.success and srv.records == [] and mats(again)["item_embeddings"]["reused"].value == 4


def test_known_model_with_the_wrong_dimension_fails_the_blocking_check(tmp_path, instance):
    with FakeEmbeddingsAPI(key=KEY, models={"text-embedding-3-small": 24}) as srv:  # real one has 1536
        src = write_movielens_dir(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **api_env(srv, EMBEDDING_MODEL="text-embedding-3-small"))
        run_without_checks(settings, instance, "key:movies or key:tags")
        result = materialize_all(settings, instance, FEATURES)
        evaluated = checks(result)
        assert evaluated["item_embeddings:dimension_matches_model"] is False
        assert evaluated["item_embeddings:no_nan"] and evaluated["item_embeddings:unit_norm"]


def test_api_auth_error_fails_without_leaking_the_key_and_keeps_nothing_half_written(tmp_path, instance):
    with FakeEmbeddingsAPI(key="sk-the-right-one", models={"fake-embed": 24}) as srv:
        src = write_movielens_dir(tmp_path / "csv")
        settings = make_settings(tmp_path, str(src), **api_env(srv))
        run_without_checks(settings, instance, "key:movies or key:tags")
        result = materialize_all(settings, instance, FEATURES)
        assert not result.success
        text = failure_text(result)
        assert "rejected the API key (HTTP 401)" in text and "EMBEDDING_API_KEY" in text
        assert KEY not in text and KEY not in log_text(instance, result)
        assert not store_dir(settings).exists() or list(store_dir(settings).glob("chunk-*")) == []


def test_bad_configuration_unknown_model_and_wrong_dimension_on_resume(tmp_path, instance, offline):
    src = write_movielens_dir(tmp_path / "csv")
    bad = make_settings(tmp_path, str(src), EMBEDDING_MODEL="bge-m3-typo")
    run_without_checks(bad, instance, "key:movies or key:tags")
    result = materialize_all(bad, instance, FEATURES)
    assert not result.success
    assert "unknown embedding model 'bge-m3-typo'" in failure_text(result)
    assert "BAAI/bge-m3" in failure_text(result)

    model_dir = build_tiny_model(tmp_path / "models" / "mine", dim=16)
    ok = make_settings(tmp_path, str(src), EMBEDDING_MODEL=str(model_dir))
    assert materialize_all(ok, instance, FEATURES).success
    build_tiny_model(model_dir, dim=24, seed=1)  # another model saved over the same path
    ok_texts = pq.read_table(ok.data_dir / "features" / "item_text.parquet")
    # a changed text forces an embedding with the new 24-d model under the old key
    tags = (src / "tags.csv").read_text() + "3,4,new tag,978300800\n"
    (src / "tags.csv").write_text(tags)
    run_without_checks(ok, instance, "key:tags")
    result = materialize_all(ok, instance, FEATURES)
    assert not result.success
    text = failure_text(result)
    assert "with dimension [16]" in text and "24-d" in text and "changed under the same name" in text
    assert ok_texts.num_rows == 4

    with pytest.raises(ValueError, match="MOVIELENS_DEVICE must be one of"):
        make_settings(tmp_path, str(src), MOVIELENS_DEVICE="tpu")
    with pytest.raises(ValueError, match="EMBEDDING_BACKEND must be one of"):
        make_settings(tmp_path, str(src), EMBEDDING_BACKEND="tensorflow")
    no_cuda = make_settings(tmp_path, str(src), MOVIELENS_DEVICE="cuda", EMBEDDING_MODEL=str(model_dir))
    import torch

    if not torch.cuda.is_available():
        result = materialize_all(no_cuda, instance, "key:item_embeddings")
        assert not result.success and "CUDA is not available" in failure_text(result)


def test_embedding_key_from_the_environment_reaches_no_storage(tmp_path, monkeypatch):
    with FakeEmbeddingsAPI(key=KEY, models={"fake-embed": 24}) as srv:
        src = write_movielens_dir(tmp_path / "csv")
        env = {"MOVIELENS_DATA_DIR": str(tmp_path / "lake"), "MOVIELENS_DATASET": str(src), **api_env(srv)}
        env.pop("EMBEDDING_API_KEY")
        env["OPENAI_API_KEY"] = KEY  # the fallback variable
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("EMBEDDING_API_KEY", raising=False)
        settings = load_settings()
        assert settings.secrets_from_env and settings.embedding_api_key_env == "OPENAI_API_KEY"
        assert KEY not in repr(settings)
        home = tmp_path / "home"
        home.mkdir()
        with dg.instance_for_test(temp_dir=str(home)) as inst:
            result = materialize_all(settings, inst, "key:movies or key:tags or group:features")
            assert result.success, failure_text(result)
            assert {r.authorization for r in srv.records} == {f"Bearer {KEY}"}  # EnvVar resolved and sent
            record = inst.get_run_by_id(result.run_id)
            stored = [record, inst.get_job_snapshot(record.job_snapshot_id), *inst.all_logs(result.run_id)]
            assert [type(x).__name__ for x in stored if KEY in dg.serialize_value(x)] == []
        assert [p for p in home.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []
        assert [p for p in (tmp_path / "lake").rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []
