"""The Dagster UI as a user meets it: `dagster dev` of this checkout (fixture `dagster_dev`), its GraphQL API,
and a headless Chromium that opens the asset graph and materializes `movielens_raw` through the UI."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from movielens_assets.definitions import build_definitions, build_resources
from movielens_assets.partitions import ranking_shards
from movielens_assets.settings import load_settings
from movielens_assets_tests.ui.browser import graphql, is_png, wait_for

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

ASSET_NODES = "{ assetNodes { assetKey { path } groupName isPartitioned } }"
RANKING_SAMPLES = """{ assetOrError(assetKey: {path: ["ranking_samples"]}) {
  __typename ... on Asset { definition { isPartitioned partitionKeys partitionDefinition { type } } } } }"""
ASSET_CHECKS = """{ assetNodes { assetKey { path }
  assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }"""
SCHEDULE = """query($location: String!, $repository: String!) {
  scheduleOrError(scheduleSelector: {repositoryLocationName: $location, repositoryName: $repository,
                                     scheduleName: "tmdb_refresh_schedule"}) {
    __typename ... on Schedule { name cronSchedule defaultStatus scheduleState { status } }
    ... on PythonError { message } } }"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
RUNS = "{ runsOrError { __typename ... on Runs { results { runId status assetSelection { path } } } } }"
RUN = """query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { runId status } } }"""
LATEST_MATERIALIZATION = """{ assetOrError(assetKey: {path: ["movielens_raw"]}) { ... on Asset {
  assetMaterializations(limit: 1) { runId metadataEntries { label ... on PathMetadataEntry { path } } } } } }"""
RUN_EVENTS = """query($runId: ID!) { logsForRun(runId: $runId, limit: 500) {
  ... on EventConnection { events { __typename ... on MessageEvent { message }
                                    ... on ExecutionStepFailureEvent { error { message cause { message } } } } } } }"""

#: The first visit to a fresh instance shows this modal; it intercepts every click until dismissed ("Skip").
COMMUNITY_DIALOG = "Join the Dagster community"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@pytest.fixture(scope="module")
def definitions(dagster_dev):
    """The Definitions the server loads, built in this process from the server's own environment."""
    return build_definitions(load_settings(dagster_dev.env))


def test_graphql_serves_groups_partitions_checks_and_schedule(dagster_dev, definitions):
    """The webserver's GraphQL API serves exactly the Definitions: every asset in its group, the user shards of
    `ranking_samples`, every asset check (the ingest ones blocking) and a RUNNING `tmdb_refresh_schedule`."""
    graph = definitions.resolve_asset_graph()
    expected_groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"ingest", "tmdb", "features", "recall", "ranking"} <= expected_groups

    # every asset of the Definitions, in its group
    nodes = graphql(dagster_dev.url, ASSET_NODES)["assetNodes"]
    served = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    expected = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert len(served) >= 30, f"suspiciously few assets: {sorted(served)}"
    assert served == expected
    assert set(served.values()) == expected_groups
    assert served["movielens_raw"] == "ingest"
    assert ["/".join(n["assetKey"]["path"]) for n in nodes if n["isPartitioned"]] == ["ranking_samples"]

    # ranking_samples: partitioned by the user shards of the settings (`00` … `15` by default)
    shards = load_settings(dagster_dev.env).ranking_shards
    asset = graphql(dagster_dev.url, RANKING_SAMPLES)["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    definition = asset["definition"]
    assert definition["isPartitioned"] is True
    assert definition["partitionDefinition"]["type"] == "STATIC"
    assert definition["partitionKeys"] == ranking_shards(shards).get_partition_keys() == [f"{i:02d}" for i in
                                                                                         range(shards)]

    # asset checks: exactly those of the Definitions, the ingest ones blocking
    served_checks = {
        ("/".join(n["assetKey"]["path"]), c["name"]): c["blocking"]
        for n in graphql(dagster_dev.url, ASSET_CHECKS)["assetNodes"]
        for c in n["assetChecksOrError"]["checks"]
    }
    assert len(served_checks) >= 20, served_checks
    assert set(served_checks) == {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    for check in [("ratings", "unique_user_movie"), ("ratings", "rating_domain"), ("ratings", "rated_movies_exist"),
                  ("movies", "unique_movie_id")]:
        assert served_checks.get(check) is True, f"{check} missing or not blocking: {served_checks.get(check)}"

    # the TMDb refresh schedule: RUNNING on a fresh instance (default_status), daily
    schedule = graphql(dagster_dev.url, SCHEDULE, {"location": dagster_dev.location,
                                                   "repository": dagster_dev.repository})["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["defaultStatus"] == "RUNNING"
    assert schedule["scheduleState"]["status"] == "RUNNING"
    assert schedule["cronSchedule"] == load_settings(dagster_dev.env).tmdb_refresh_cron

    # ... and a RUNNING schedule only ticks while the scheduler daemon runs: `dagster dev` started a healthy one
    def scheduler_healthy() -> bool:
        statuses = graphql(dagster_dev.url, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return any(d["daemonType"] == "SCHEDULER" and d["healthy"] for d in statuses)

    wait_for(scheduler_healthy, 60, "a healthy SCHEDULER daemon", log_path=dagster_dev.log)


def _runs(url: str) -> list[dict[str, Any]]:
    runs = graphql(url, RUNS)["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return runs["results"]


def _wait_run_finished(url: str, run_id: str, timeout_s: float, log: Path) -> str:
    def status() -> str | None:
        run = graphql(url, RUN, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        return run["status"] if run["status"] in FINISHED else None

    return wait_for(status, timeout_s, f"run {run_id} to finish", log_path=log)


def _filter_asset_graph(page: Page, selection: str) -> bool:
    """Type `selection` into the graph's asset selection box (a CodeMirror editor) and press Enter; True once the
    URL carries the filter. Right after the page loads the editor may still be re-rendering and drop the
    keystrokes, so the caller retries."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.locator(".CodeMirror").first.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(selection)
    page.keyboard.press("Enter")
    try:
        page.wait_for_url(re.compile(r"/asset-groups~"), timeout=3000)
    except PlaywrightTimeoutError:
        return False
    return True


def test_materialize_movielens_raw_through_the_ui(browser, dagster_dev, definitions, tmp_path):
    """Open the asset graph, filter it to `movielens_raw`, click its node, "Materialize selected", follow the
    toast to the run page; the run succeeds, the asset's latest materialization is that run's and the CSVs are
    in the lake. Screenshots of the graph and the finished run (and of the page on failure) in `tmp_path`."""
    url = dagster_dev.url
    assert not [r for r in _runs(url) if r["assetSelection"] == [{"path": ["movielens_raw"]}]]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.add_locator_handler(page.get_by_text(COMMUNITY_DIALOG),
                             lambda _: page.get_by_role("button", name="Skip").click())
    try:
        # the global asset graph draws a node for every group of the Definitions
        page.goto(f"{url}/asset-groups")
        graph = definitions.resolve_asset_graph()
        for group in sorted({graph.get(k).group_name for k in graph.get_all_asset_keys()}):
            page.locator("svg foreignObject").get_by_text(group, exact=True).first.wait_for(state="visible")
        graph_png = tmp_path / "asset_graph.png"
        page.screenshot(path=str(graph_png))

        # filter the graph to movielens_raw, click its node, "Materialize selected"
        wait_for(lambda: _filter_asset_graph(page, 'key:"movielens_raw"'), 60, "the asset graph to take the filter")
        page.locator("svg foreignObject").get_by_text("movielens_raw", exact=True).first.click()
        page.get_by_role("button", name="Materialize selected").click()

        # the toast "Launched run <id>" links to the run
        toast = page.get_by_text("Launched run")
        toast.wait_for(state="visible")
        page.get_by_role("link", name="View", exact=True).click()
        page.wait_for_url("**/runs/*")
        run_id = page.url.rstrip("/").split("/runs/")[1].split("?")[0]
        assert len(run_id) == 36, page.url

        status = _wait_run_finished(url, run_id, 120, dagster_dev.log)
        if status != "SUCCESS":
            events = graphql(url, RUN_EVENTS, {"runId": run_id})["logsForRun"]["events"]
            failures = [" ".join([e["__typename"] + ":", e.get("message") or "",
                                  *(err["message"] for err in (e.get("error"), (e.get("error") or {}).get("cause"))
                                    if err)])
                        for e in events if "Failure" in e["__typename"]]
            pytest.fail(f"run {run_id} ended {status}:\n" + "\n".join(failures), pytrace=False)
        # the run page shows it too
        page.get_by_text("RUN_SUCCESS").first.wait_for(state="visible")
        run_png = tmp_path / "run.png"
        page.screenshot(path=str(run_png))
    except BaseException:
        with contextlib.suppress(Exception):  # what the browser showed when it went wrong, next to the log
            page.screenshot(path=str(tmp_path / "failure.png"))
        raise
    finally:
        context.close()

    # exactly one run, of movielens_raw, and the asset's latest materialization is that run's
    runs = _runs(url)
    assert [(r["runId"], r["status"]) for r in runs
            if r["assetSelection"] == [{"path": ["movielens_raw"]}]] == [(run_id, "SUCCESS")]
    materialization = graphql(url, LATEST_MATERIALIZATION)["assetOrError"]["assetMaterializations"][0]
    assert materialization["runId"] == run_id

    # what it wrote: the synthetic-tiny CSVs, where the movielens source puts them in this lake
    resources = build_resources(load_settings(dagster_dev.env))
    csv_dir = resources["movielens"].csv_dir(resources["lake"].raw_dir)
    assert csv_dir.is_relative_to(dagster_dev.lake)
    paths = {e["label"]: e.get("path") for e in materialization["metadataEntries"]}
    assert paths["path"] == str(csv_dir)
    for name in ("ratings.csv", "movies.csv"):
        lines = (csv_dir / name).read_text().splitlines()
        assert len(lines) > 10, f"{csv_dir / name}: {len(lines)} lines"
    assert (csv_dir / "ratings.csv").read_text().startswith("userId,movieId,rating,timestamp\n")

    for png in (graph_png, run_png):
        assert is_png(png), f"{png} is not a non-trivial PNG ({png.stat().st_size} bytes)"
