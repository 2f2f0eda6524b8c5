from __future__ import annotations

import re
from pathlib import Path

import pytest

from movielens_assets.settings import DEFAULT_DATASET, Settings, default, env_names, load_settings, resource_fields


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.dataset == DEFAULT_DATASET == "synthetic-small"
    assert s.data_dir == (tmp_path / "data").resolve()
    assert s.seed == 42 and s.duckdb_memory_limit is None and s.duckdb_threads is None


def test_environment_overrides(tmp_path):
    s = load_settings({"MOVIELENS_DATA_DIR": str(tmp_path / "lake"), "MOVIELENS_DATASET": " ml-32m ",
                       "MOVIELENS_SEED": "0", "MOVIELENS_DUCKDB_THREADS": "2",
                       "MOVIELENS_GROUPLENS_URL": "http://127.0.0.1:9/x/"})
    assert (s.data_dir, s.dataset, s.seed, s.duckdb_threads) == (tmp_path / "lake", "ml-32m", 0, 2)
    assert s.grouplens_url == "http://127.0.0.1:9/x"


def test_bad_integer_names_the_variable():
    with pytest.raises(ValueError, match="MOVIELENS_SEED must be an integer, got 'abc'"):
        load_settings({"MOVIELENS_SEED": "abc"})


def test_env_example_lists_every_variable_read():
    """Every environment variable the package reads (the declarations of settings.py, and any dg.EnvVar or
    os.environ read elsewhere) is in .env.example."""
    root = Path(__file__).resolve().parents[1]
    used = set(env_names())
    assert len(used) == len(env_names()), "a variable is declared by two settings"
    for py in (root / "movielens_assets").rglob("*.py"):
        text = py.read_text()
        used |= set(re.findall(r"""(?:env\.get|EnvVar|os\.environ\.get|os\.getenv)\(\s*["']([A-Z_]+)["']""", text))
        used |= set(re.findall(r"""os\.environ\[\s*["']([A-Z_]+)["']""", text))
    listed = set(re.findall(r"^([A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    assert {"MOVIELENS_DATA_DIR", "MOVIELENS_DATASET"} <= used
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"


def test_every_setting_has_one_declaration_that_the_loader_and_resources_use(tmp_path, monkeypatch):
    """Empty environment -> each declared default; every routed field exists on its resource, which
    defaults to the same declaration."""
    from dataclasses import fields

    from movielens_assets.definitions import RESOURCES, build_resources

    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    declared = [f.name for f in fields(Settings) if "setting" in f.metadata]
    assert "seed" in declared and "secrets_from_env" not in declared
    for name in declared:
        if name != "data_dir":  # resolved against the cwd
            assert getattr(s, name) == default(name), name
    routed = {attr for key in RESOURCES for attr in resource_fields(key).values()}
    assert routed == set(declared) - {"tmdb_refresh_cron", "executor"}  # the cron and the executor feed no resource
    resources = build_resources(s)
    for key, cls in RESOURCES.items():
        for field_name, attr in resource_fields(key).items():
            assert field_name in cls.model_fields, f"{key}.{field_name}"
            if attr == "data_dir":
                continue
            assert getattr(resources[key], field_name) == default(attr), f"{key}.{field_name}"
            if not cls.model_fields[field_name].is_required():  # lake.root, movielens.dataset: required
                assert cls.model_fields[field_name].default == default(attr), f"{key}.{field_name}"


def test_build_resources_reflects_overridden_variables(tmp_path):
    from movielens_assets.definitions import build_resources

    s = load_settings({"MOVIELENS_DATA_DIR": str(tmp_path / "lake"), "MOVIELENS_SEED": "7",
                       "MOVIELENS_DUCKDB_MEMORY_LIMIT": "2GB", "TMDB_RATE_LIMIT_PER_S": "12.5",
                       "TMDB_API_KEY": " k ", "MOVIELENS_DEVICE": " CPU ", "MOVIELENS_RANKING_SHARDS": "3",
                       "EMBEDDING_BACKEND": "openai", "EMBEDDING_CHUNK_SIZE": "300", "OPENAI_API_KEY": "sk-x"})
    r = build_resources(s)
    assert (r["lake"].root, r["lake"].duckdb_memory_limit) == (str(tmp_path / "lake"), "2GB")
    assert r["movielens"].seed == 7 and r["ranking_shards"].shards == 3 and r["torch_device"].device == "cpu"
    assert (r["tmdb"].rate_limit_per_s, r["tmdb"].api_key, r["tmdb"].read_access_token) == (12.5, "k", None)
    assert (r["embedder"].backend, r["embedder"].chunk_size, r["embedder"].api_key) == ("openai", 300, "sk-x")
    assert s.embedding_api_key_env == "OPENAI_API_KEY" and not s.secrets_from_env


def test_secrets_read_from_the_process_environment_become_env_vars(monkeypatch):
    import dagster as dg

    from movielens_assets.definitions import build_resources

    monkeypatch.setenv("TMDB_API_READ_ACCESS_TOKEN", "tok-123")
    monkeypatch.delenv("EMBEDDING_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-123")
    monkeypatch.setenv("TMDB_MAX_CONNECTIONS", "3")
    s = load_settings()
    assert s.secrets_from_env and "tok-123" not in repr(s) and "sk-123" not in repr(s)
    r = build_resources(s)
    assert r["tmdb"].read_access_token == dg.EnvVar("TMDB_API_READ_ACCESS_TOKEN")
    assert r["embedder"].api_key == dg.EnvVar("OPENAI_API_KEY")
    assert r["tmdb"].max_connections == 3


def test_bad_values_name_the_variable_and_the_expected_form():
    for env, message in [
        ({"MOVIELENS_DEVICE": "tpu"},
         "environment variable MOVIELENS_DEVICE must be one of auto, cpu, cuda, cuda:N, mps; got 'tpu'"),
        ({"EMBEDDING_BACKEND": "tensorflow"}, "environment variable EMBEDDING_BACKEND must be one of"),
        ({"MOVIELENS_RANKING_SHARDS": "0"}, "environment variable MOVIELENS_RANKING_SHARDS must be in 1..1000"),
        ({"MOVIELENS_DUCKDB_THREADS": "1.5"}, "environment variable MOVIELENS_DUCKDB_THREADS must be an integer"),
        ({"TMDB_MAX_AGE_DAYS": "z"}, "environment variable TMDB_MAX_AGE_DAYS must be a number"),
        ({"TMDB_REQUIRED": "maybe"}, "environment variable TMDB_REQUIRED must be 1/0"),
        ({"MOVIELENS_DATA_DIR": "s3://lake/ml"},
         "environment variable MOVIELENS_DATA_DIR must be a local directory, got the URL 's3://lake/ml'"),
        ({"MOVIELENS_DATA_DIR": " gs://b/p "}, "object-store lakes (s3://…) are not supported yet"),
        ({"MOVIELENS_EXECUTOR": "celery"},
         "environment variable MOVIELENS_EXECUTOR must be one of multiprocess, k8s; got 'celery'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_settings(env)
