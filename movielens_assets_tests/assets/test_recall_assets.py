"""The recall group end to end on synthetic-tiny (with the features group and a tiny 32-d text model, so
that the two_tower and semantic channels run): ids round-trip, seen items excluded, metrics file shape, the
blocking checks pass on the output and fail on a corrupted copy of it."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from movielens_assets.core.evaluation.metrics import KS
from movielens_assets_tests.helpers import FAST_TWO_TOWER, make_settings, materialize

RECALL = {"splits", "popularity_recall", "itemcf_recall", "two_tower_recall", "semantic_recall",
          "recall_candidates", "recall_metrics"}
NEW_CHANNELS = ("two_tower", "semantic")
RECALL_CHECKS = {("splits", "no_time_leakage"), *((f"{c}_recall", "valid_candidate_lists")
                                                  for c in ("popularity", "itemcf", "two_tower", "semantic")),
                 ("recall_candidates", "valid_candidate_lists")}


@pytest.fixture(scope="module")
def lake(tmp_path_factory, tiny_model_dir):
    import dagster as dg

    tmp = tmp_path_factory.mktemp("recall")
    settings = make_settings(tmp, "synthetic-tiny", EMBEDDING_MODEL=str(tiny_model_dir), MOVIELENS_DEVICE="cpu")
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance, "group:ingest or group:features or group:recall",
                             {"ops": {"two_tower_recall": {"config": FAST_TWO_TOWER}}})
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        mats = {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
                for e in result.get_asset_materialization_events()}
        checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert RECALL <= set(mats)
    assert {k for k in checks if k[0] in RECALL} == RECALL_CHECKS
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items() if not c.passed}
    return settings.data_dir, mats


def test_demo_prints_the_recall_table(lake):
    from movielens_assets.demo import recall_table

    root, _ = lake
    report = json.loads((root / "metrics" / "recall.json").read_text())
    lines = recall_table(report).splitlines()
    rows = {tuple(line.split()[:2]): line.split() for line in lines[2:]}
    for protocol, body in report["protocols"].items():
        for channel, m in body["channels"].items():
            row = rows[(protocol, channel)]
            assert int(row[2]) == m["users"] and float(row[3]) == pytest.approx(m["recall@20"], abs=1e-4)
            assert float(row[5]) == pytest.approx(m["recall@100"], abs=1e-4)
    assert len(rows) == sum(len(b["channels"]) for b in report["protocols"].values())


def test_metrics_file_shape_and_table(lake):
    root, mats = lake
    report = json.loads((root / "metrics" / "recall.json").read_text())
    assert report["dataset"] == "synthetic-tiny"
    assert set(report["protocols"]) == {"last_n", "global_time"}
    for body in report["protocols"].values():
        assert isinstance(body["users"], int) and body["users"] > 0
        assert {"popularity", "itemcf", "two_tower", "semantic", "merged"} <= set(body["channels"])
        for metrics in body["channels"].values():
            for k in KS:
                for name in ("hr", "recall", "ndcg"):
                    assert isinstance(metrics[f"{name}@{k}"], float) and 0.0 <= metrics[f"{name}@{k}"] <= 1.0
                    lo, hi = metrics[f"{name}@{k}_ci"]
                    assert lo <= metrics[f"{name}@{k}"] + 1e-9 and metrics[f"{name}@{k}"] <= hi + 1e-9
                assert f"recall@{k}_liked" in metrics and f"coverage@{k}" in metrics
    table = mats["recall_metrics"]["table"].value
    assert "| last_n | itemcf |" in table and "| global_time | merged |" in table
    last_n = report["protocols"]["last_n"]["channels"]
    assert last_n["itemcf"]["recall@20"] > last_n["popularity"]["recall@20"]


def test_ids_round_trip_and_seen_items_excluded(lake):
    root, _ = lake
    con = duckdb.connect()
    for protocol in ("last_n", "global_time"):
        split, cand = root / "recall" / "splits" / protocol, root / "recall" / "candidates" / protocol
        for channel in ("popularity", "popularity_recent", "itemcf", *NEW_CHANNELS, "merged", "merged_quota"):
            path = cand / f"{channel}.parquet"
            # every candidate user is a test user known in train, every movie a raw id known in train
            (unknown_users, unknown_movies, seen, dup, n) = con.execute(f"""
                SELECT
                  (SELECT count(*) FROM (SELECT DISTINCT user_id FROM read_parquet('{path}')) c
                     WHERE user_id NOT IN (SELECT user_id FROM read_parquet('{split}/test.parquet'))
                        OR user_id NOT IN (SELECT user_id FROM read_parquet('{split}/train.parquet'))),
                  (SELECT count(*) FROM read_parquet('{path}')
                     WHERE movie_id NOT IN (SELECT movie_id FROM read_parquet('{split}/train.parquet'))),
                  (SELECT count(*) FROM read_parquet('{path}') c JOIN read_parquet('{split}/train.parquet') t
                     USING (user_id, movie_id)),
                  (SELECT count(*) - count(DISTINCT (user_id, movie_id)) FROM read_parquet('{path}')),
                  (SELECT count(*) FROM read_parquet('{path}'))""").fetchone()
            assert (unknown_users, unknown_movies, seen, dup) == (0, 0, 0, 0), (protocol, channel)
            assert n > 0
        # the raw ids of the IdMap are exactly the train ids
        import numpy as np

        users = np.load(split / "ids" / "users.npy")
        (n_train_users,) = con.execute(f"SELECT count(DISTINCT user_id) FROM read_parquet('{split}/train.parquet')"
                                       ).fetchone()
        assert users.size == n_train_users
    merged = con.execute(f"SELECT channels, channel_ranks, rank FROM read_parquet('{root}/recall/candidates/last_n/"
                         f"merged.parquet') LIMIT 5").fetchall()
    assert all(len(c) == len(r) >= 1 for c, r, _ in merged)


def test_recall_group_wiring():
    import dagster as dg

    from movielens_assets import definitions
    from movielens_assets.assets.recall import RECALL_CHANNELS

    graph = definitions.defs.resolve_asset_graph()
    group = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "recall"}
    assert RECALL <= group
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("recall_candidates")).parent_keys}
    assert parents == {f"{c}_recall" for c in RECALL_CHANNELS}
    assert graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey("splits"), "no_time_leakage")).blocking


def test_two_tower_and_semantic_candidates_metrics_and_training_curve(lake):
    root, mats = lake
    con = duckdb.connect()
    report = json.loads((root / "metrics" / "recall.json").read_text())
    for protocol in ("last_n", "global_time"):
        train = root / "recall" / "splits" / protocol / "train.parquet"
        for channel in NEW_CHANNELS:
            path = root / "recall" / "candidates" / protocol / f"{channel}.parquet"
            assert path.is_file(), (protocol, channel)
            (n, seen) = con.execute(f"""SELECT (SELECT count(*) FROM read_parquet('{path}')),
                (SELECT count(*) FROM read_parquet('{path}') JOIN read_parquet('{train}') USING (user_id, movie_id))
                """).fetchone()
            assert n > 0 and seen == 0, (protocol, channel, n, seen)
            assert (root / "models" / "recall" / protocol / channel).is_dir()
            m = report["protocols"][protocol]["channels"][channel]
            assert 0.0 <= m["recall@100"] <= 1.0 and m["users"] > 0
        # the merged list carries the new channels' provenance
        merged = root / "recall" / "candidates" / protocol / "merged.parquet"
        (channels,) = con.execute(f"SELECT list_distinct(flatten(list(channels))) FROM read_parquet('{merged}')"
                                  ).fetchone()
        assert set(NEW_CHANNELS) <= set(channels)
        # the training curve of the two-tower fit (1 epoch in this fast config)
        tt = mats["two_tower_recall"]
        losses = tt[f"{protocol}/two_tower/loss_per_epoch"].value
        assert isinstance(losses, list) and len(losses) == FAST_TWO_TOWER["epochs"]
        final = tt[f"{protocol}/two_tower/final_loss"].value
        assert isinstance(final, float) and final == pytest.approx(losses[-1]) and final > 0
        assert tt[f"{protocol}/two_tower/train_seconds"].value > 0
        assert tt[f"{protocol}/two_tower/device"].value == "cpu"
    tt = mats["two_tower_recall"]
    assert tt["device"].value == "cpu" and tt["item_embeddings"].value != "none"  # the stored embeddings were used
    # one fit per distinct training file: last_n's window stage has its own, global_time's shares the test fit
    assert set(tt["training_log"].value) == {"last_n/two_tower", "last_n/window/two_tower", "global_time/two_tower"}
    assert (root / "models" / "recall" / "last_n" / "window" / "two_tower").is_dir()
    assert not (root / "models" / "recall" / "global_time" / "window").exists()
    assert mats["semantic_recall"]["dim"].value == 32
    assert "loss_per_epoch" not in str(list(mats["semantic_recall"]))  # no training log: no curve
    table = mats["recall_metrics"]["table"].value
    assert "| last_n | two_tower |" in table and "| global_time | semantic |" in table


def test_semantic_recall_fails_clearly_without_embeddings(tmp_path):
    import dagster as dg

    from movielens_assets.assets.recall import semantic_recall
    from movielens_assets.resources import DataLake

    with dg.instance_for_test() as instance:
        result = dg.materialize([semantic_recall], instance=instance, raise_on_error=False,
                                resources={"lake": DataLake(root=str(tmp_path / "lake"))},
                                selection=[semantic_recall])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no item embeddings are stored" in failure.step_failure_data.error.message


def test_merge_weights_tuned_on_each_protocols_window(lake):
    """Every channel also answers each protocol's window users (never test users there; last_n's window lists
    exclude what the user has in the window stage's train); each protocol's RRF weights come from its own
    window lists, are recorded, and the report says where they were tuned. The merged lists of both stages
    keep every channel's rank and score."""
    root, mats = lake
    con = duckdb.connect()
    for protocol in ("last_n", "global_time"):
        fit = root / "recall" / "splits" / protocol / ("window" if protocol == "last_n" else "")
        for channel in ("popularity", "itemcf", *NEW_CHANNELS):
            path = root / "recall" / "candidates" / protocol / "window" / f"{channel}.parquet"
            outside, seen, n = con.execute(f"""
                SELECT count(*) FILTER (
                           WHERE c.user_id NOT IN (SELECT user_id FROM read_parquet('{fit}/valid.parquet'))),
                       count(*) FILTER (WHERE t.user_id IS NOT NULL), count(*)
                FROM read_parquet('{path}') c
                LEFT JOIN read_parquet('{fit}/train.parquet') t USING (user_id, movie_id)""").fetchone()
            assert n > 0 and outside == 0 and seen == 0, (protocol, channel)
        tuning = json.loads((root / "recall" / "candidates" / protocol / "merge_weights.json").read_text())
        assert tuning["tuned_on"] == f"{protocol}/window" and tuning["users"] > 0
        assert set(tuning["weights"]) == {"popularity", "itemcf", *NEW_CHANNELS}
        assert tuning["recall@100"] >= tuning["equal"]["recall@100"]
        report = json.loads((root / "metrics" / "recall.json").read_text())
        assert report["protocols"][protocol]["merge"]["weights"] == tuning["weights"]
        assert mats["recall_candidates"]["weights"].value[protocol]["weights"] == tuning["weights"]
        for stage in ("", "window"):
            merged = root / "recall" / "candidates" / protocol / stage / "merged.parquet"
            cols = {name for name, *_ in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{merged}')").fetchall()}
            assert {f"{p}_{c}" for p in ("rank", "score") for c in ("popularity", "itemcf", *NEW_CHANNELS)} <= cols
            (bad,) = con.execute(f"""SELECT count(*) FROM read_parquet('{merged}')
                                     WHERE (rank_itemcf IS NULL) <> (score_itemcf IS NULL)""").fetchone()
            assert bad == 0


def _candidates_check(asset: str):
    import dagster as dg

    from movielens_assets.checks.recall import recall_checks

    key = dg.AssetCheckKey(dg.AssetKey(asset), "valid_candidate_lists")
    return next(c for c in recall_checks if key in c.check_keys)


def _rewrite(path, select: str) -> None:
    """Replace the Parquet file at `path` by `select` over its rows (`src`), keeping its column types."""
    con = duckdb.connect()
    tmp = path.with_suffix(".new")
    con.execute(f"COPY (WITH src AS (SELECT * FROM read_parquet('{path}')) {select}) TO '{tmp}' (FORMAT parquet)")
    tmp.replace(path)


# each: the asset whose check reads the file, the file (protocol/[window/]name), the corruption (SQL over `src`;
# `train` is the stage's train split), the phrase expected in the check's one-line description
CORRUPTIONS = {
    "seen_item": (
        "itemcf_recall", "last_n/window/itemcf",
        # the first window user's first train movie appended at the end of their list
        """SELECT * FROM src UNION ALL
           SELECT user_id, movie_id, (SELECT max(rank) + 1 FROM src s WHERE s.user_id = t.user_id)::INTEGER,
                  (SELECT min(score) FROM src s WHERE s.user_id = t.user_id)
           FROM (SELECT user_id, min(movie_id) AS movie_id FROM train
                 WHERE user_id = (SELECT min(user_id) FROM src) GROUP BY 1) t""",
        "itemcf last_n/window: 1 candidates already in the user's train split"),
    "nan_score": (
        "two_tower_recall", "global_time/two_tower",
        "SELECT * REPLACE (CASE WHEN rank = 3 THEN 'nan'::FLOAT ELSE score END AS score) FROM src",
        "two_tower global_time: "),
    "missing_column": (
        "semantic_recall", "last_n/semantic", "SELECT * EXCLUDE (score) FROM src",
        "semantic last_n: missing column(s) score"),
    "rank_gap": (
        "popularity_recall", "global_time/window/popularity_recent",
        "SELECT * REPLACE (CASE WHEN rank > 5 THEN rank + 1 ELSE rank END AS rank) FROM src",
        "popularity_recent global_time/window: "),
    "merged_unpaired": (
        "recall_candidates", "last_n/merged",
        "SELECT * REPLACE (CASE WHEN rank = 1 THEN NULL ELSE score_itemcf END AS score_itemcf) FROM src",
        "merged last_n: "),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_candidate_checks_fail_on_a_corrupted_file(lake, tmp_path, case):
    """A copy of the materialized recall files passes every candidate check; one corrupted file fails its
    asset's check, which names the file and what is wrong in its description and metadata."""
    from movielens_assets.resources import DataLake

    root, _ = lake
    copy = DataLake(root=str(tmp_path / "lake"))
    shutil.copytree(root / "recall", copy.recall_dir)
    asset, name, corruption, phrase = CORRUPTIONS[case]
    check = _candidates_check(asset)
    before = check(copy)
    assert before.passed and before.description is None and before.metadata["failed_files"].value == 0

    protocol, *rest = name.split("/")
    split = copy.recall_dir / "splits" / protocol / ("window" if rest[0] == "window" and protocol == "last_n" else "")
    path = copy.recall_dir / "candidates" / f"{name}.parquet"
    _rewrite(path, corruption.replace("FROM train", f"FROM read_parquet('{split / 'train.parquet'}')"))
    after = check(copy)
    assert not after.passed and after.description.startswith(phrase), after.description
    assert after.metadata["failed_files"].value == 1
    label = phrase.split(":")[0]
    assert not after.metadata["results"].value[label]["passed"]
    assert f"| `{label}` |" in after.metadata["files_table"].value
    if case == "nan_score":
        assert "non-finite or NULL score values" in after.description
    if case == "rank_gap":
        assert "users whose ranks are not 1..n" in after.description
    if case == "merged_unpaired":
        assert "rows with only one of rank_itemcf / score_itemcf set" in after.description


def test_the_two_tower_training_curve_is_shown_inline(lake):
    import base64

    root, mats = lake
    tt = mats["two_tower_recall"]
    png = root / "reports" / "two_tower_training_curve.png"
    assert tt["training_curve_plot"].value == str(png)
    chart = tt["training_curve_chart"].value
    prefix = "![training loss per epoch](data:image/png;base64,"
    assert chart.startswith(prefix) and chart.endswith(")")
    data = base64.b64decode(chart[len(prefix):-1])
    assert data == png.read_bytes() and data.startswith(b"\x89PNG") and 1_000 < len(data) < 100_000


def test_a_png_too_large_to_inline_is_named_by_its_path(tmp_path):
    from movielens_assets.assets._metadata import png_markdown

    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG" + bytes(300_000))
    text = png_markdown(path, "big").value
    assert "data:" not in text and str(path) in text and "too large to show inline" in text
