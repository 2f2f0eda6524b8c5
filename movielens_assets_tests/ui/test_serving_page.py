"""The recommendation page of `movielens-rec serve`, in headless Chromium, as a user uses it: a user id shows
their recent history and their recommendations with the reasons; a movie title shows similar movies; a bad id
shows the service's error message. The server is the real console script, stopped by process group."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pytest

from movielens_assets_tests.ui.browser import free_port, is_png, start_process_group, stop_process_group, wait_http

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page_url(served_lake, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "MOVIELENS_DATA_DIR": str(served_lake.data_dir), "MOVIELENS_DATASET": "synthetic-tiny"}
    proc = start_process_group([str(Path(sys.executable).parent / "movielens-rec"), "serve", "--port", str(port)],
                               env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process_group(proc)


def test_the_page_shows_history_recommendations_similar_movies_and_errors(served_lake, browser, page_url, tmp_path):
    lake = served_lake.data_dir
    (user,) = duckdb.execute(f"SELECT min(user_id) FROM '{lake}/ranking/recommendations/last_n/ranked.parquet'"
                             ).fetchone()
    from movielens_assets.core.serving.recommender import Recommender

    expected = Recommender.load(lake).recommend(user, 10)
    page = browser.new_page()
    page.goto(page_url)
    page.wait_for_function("document.getElementById('status').textContent.includes('synthetic-tiny')")

    page.fill("#user", str(user))
    page.click("#recommend-button")
    page.wait_for_selector("#recommendations tr.row")
    rows = page.locator("#recommendations tr.row")
    assert rows.count() == 10
    titles = page.locator("#recommendations td.title").all_inner_texts()
    assert titles == [i["title"] for i in expected["items"]]
    channels = page.locator("#recommendations td.channels").first.locator(".chip").all_inner_texts()
    assert channels == expected["items"][0]["channels"]
    assert "ranked by the UnifiedRanker" in page.inner_text("#recommendations-note")
    assert page.locator("#history tr.row").count() == 10 and "ratings, newest first" in page.inner_text(
        "#history-note")
    assert page.inner_text("#error") == ""
    page.screenshot(path=tmp_path / "recommendations.png", full_page=True)

    movie = expected["items"][0]
    page.fill("#movie", movie["title"].lower())
    page.click("#similar-button")
    page.wait_for_selector("#similar tr.row")
    assert page.locator("#similar tr.row").count() == 10
    assert page.inner_text("#similar-note") == f"to {movie['title']}"

    page.fill("#user", "-5")
    page.click("#recommend-button")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "user must be a positive integer id" in page.inner_text("#error")
    assert page.locator("#recommendations tr.row").count() == 0
    page.fill("#movie", "zzzz no such film")
    page.click("#similar-button")
    page.wait_for_function("document.getElementById('error').textContent.includes('no movie title')")
    page.screenshot(path=tmp_path / "error.png", full_page=True)
    assert is_png(tmp_path / "recommendations.png") and is_png(tmp_path / "error.png")

    page.fill("#user", str(user))  # the service survived the bad requests
    page.click("#recommend-button")
    page.wait_for_selector("#recommendations tr.row")
    assert page.inner_text("#error") == ""
    page.close()
