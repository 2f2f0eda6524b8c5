"""Fixtures of the browser tests: a headless system Chromium (per module) and a `dagster dev` of this
checkout on a free port with a temporary instance and lake (module-wide), stopped by process group."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from movielens_assets_tests.ui.browser import (
    NO_CHROMIUM,
    chromium_path,
    free_port,
    graphql,
    start_process_group,
    stop_process_group,
    wait_for,
    wait_http,
)

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Browser

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Variables the project (and Dagster) read: never inherited from the developer's shell by the test server.
PROJECT_ENV_PREFIXES = ("MOVIELENS_", "DAGSTER_", "TMDB_", "EMBEDDING_", "OPENAI_")
#: The code location `dagster dev -m movielens_assets.definitions` serves (its name is the module's).
MODULE = "movielens_assets.definitions"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium `playwright.sync_api.Browser` on the system's Chromium (never a downloaded one);
    skips when there is no Chromium or no playwright.

    Module-scoped on purpose (launching costs ~1 s): while Playwright's sync API is active, the main thread
    counts as running an event loop, so `asyncio.run` — which other tests and in-process Dagster runs of async
    assets call — fails with "cannot be called from a running event loop". Closing it after each module keeps
    that from leaking into whatever the session runs next."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass(frozen=True)
class DagsterDev:
    """A running `dagster dev` of this checkout."""

    url: str
    env: dict[str, str]
    home: Path
    lake: Path
    log: Path
    location: str = MODULE
    repository: str = "__repository__"


def server_env(tmp: Path, dataset: str = "synthetic-tiny") -> dict[str, str]:
    """The environment of a test server: the caller's minus every project/Dagster variable, a temporary
    DAGSTER_HOME (telemetry off) and lake, `dataset`, and this checkout first on PYTHONPATH."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    env.update({
        "DAGSTER_HOME": str(home),
        "MOVIELENS_DATASET": dataset,
        "MOVIELENS_DATA_DIR": str(tmp / "lake"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
    })
    return env


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory) -> Iterator[DagsterDev]:
    """`dagster dev -m movielens_assets.definitions` on 127.0.0.1:<free port>, once its code location is loaded.
    Runs in a temporary directory (no `.env` of the checkout is picked up); its log is `<tmp>/dagster-dev.log`.
    The whole tree (webserver, daemon, code servers, runs) is stopped by process group at teardown."""
    tmp = tmp_path_factory.mktemp("dagster_dev")
    env = server_env(tmp)
    port = free_port()
    log = tmp / "dagster-dev.log"
    cmd = [str(BIN / "dagster"), "dev", "-m", MODULE, "-h", "127.0.0.1", "-p", str(port)]
    proc = start_process_group(cmd, env, log, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/server_info", 120, proc, log)

        def loaded() -> bool:
            data = graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                                "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
            entries = data["workspaceOrError"]["locationEntries"]
            errors = [e["locationOrLoadError"] for e in entries
                      if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            if errors:  # a broken code location will not heal by waiting
                pytest.fail(f"the code location failed to load: {errors[0]['message']}", pytrace=False)
            return any(e["name"] == MODULE and e["loadStatus"] == "LOADED" for e in entries)

        wait_for(loaded, 120, f"code location {MODULE} to load", proc=proc, log_path=log)
        yield DagsterDev(url=url, env=env, home=tmp / "home", lake=tmp / "lake", log=log)
    finally:
        stop_process_group(proc)
