"""Shared fixtures (plain helpers live in helpers.py): a fresh Dagster instance, and the tiny
sentence-transformers model, built once per session for every test directory that asks for it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from movielens_assets_tests.core.text.tiny_model import build_tiny_model
from movielens_assets_tests.helpers import build_full_lake


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 32-d tiny model, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-32")


@pytest.fixture(scope="session")
def served_lake(tmp_path_factory, tiny_model_dir):
    """Every asset materialized on synthetic-tiny (3 shards, fast configs), once per session: what serving reads."""
    return build_full_lake(tmp_path_factory.mktemp("served"), tiny_model_dir)
