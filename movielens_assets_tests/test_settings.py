from __future__ import annotations

from pathlib import Path

import pytest

from movielens_assets.settings import DEFAULT_DATASET, load_settings


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
    """Every environment variable the package reads (settings.py, dg.EnvVar, os.environ) is in .env.example."""
    import re

    root = Path(__file__).resolve().parents[1]
    used = set()
    for py in (root / "movielens_assets").rglob("*.py"):
        text = py.read_text()
        used |= set(re.findall(r"""(?:env\.get|EnvVar|os\.environ\.get|os\.getenv)\(\s*["']([A-Z_]+)["']""", text))
        used |= set(re.findall(r"""os\.environ\[\s*["']([A-Z_]+)["']""", text))
    listed = set(re.findall(r"^([A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    assert {"MOVIELENS_DATA_DIR", "MOVIELENS_DATASET"} <= used
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"
