"""Re-ranking the candidates and the ranking report: the same list metrics as the recall evaluation, the
labels of the candidates, re-ranked lists ordered by the ranker, and the documented shape of ranking.json."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from movielens_assets.core.evaluation.metrics import evaluate, rec_matrix_from_ranks
from movielens_assets.core.ranking.report import (
    LIST_METRICS,
    candidate_labels,
    classification,
    headline,
    list_metrics,
    missing_keys,
)


def _lists(rng, users, n_items=30, k=25):
    rows = [(u, int(m), r) for u in users for r, m in enumerate(rng.choice(n_items, size=k, replace=False), 1)]
    return tuple(np.array(c) for c in zip(*rows, strict=True))


def test_list_metrics_equal_the_recall_evaluation():
    rng = np.random.default_rng(0)
    users = np.arange(1, 41)
    cu, cm, cr = _lists(rng, users)
    tu = np.repeat(users, 3)
    ti = np.concatenate([rng.choice(30, 3, replace=False) for _ in users])
    got = list_metrics(users, tu, ti, cu, cm, cr, n_boot=50)
    rec = rec_matrix_from_ranks(users, cu, cm, cr, 100)
    ref = evaluate(rec, users, tu, ti, np.full(tu.size, 4.0), item_popularity=(np.zeros(0, np.int64), np.zeros(0)),
                   n_catalogue=30, ks=(10, 20, 50), n_boot=50)
    for name in LIST_METRICS:
        assert got[name] == pytest.approx(ref[name]) and got[f"{name}_ci"][0] <= got[name] <= got[f"{name}_ci"][1]
    assert got["users"] == 40 and set(headline(got)) == set(LIST_METRICS)


def test_candidate_labels_and_conditional_like():
    scored = pa.table({"user_id": [1, 1, 1, 2, 2], "movie_id": [10, 11, 12, 10, 13],
                       "p_watch": [0.9, 0.5, 0.1, 0.8, 0.2], "p_like": [0.45, 0.4, 0.05, 0.1, 0.1]})
    watch, like = candidate_labels(scored, np.array([1, 1, 2, 3]), np.array([10, 11, 13, 10]),
                                   np.array([2.0, 4.5, 5.0, 4.0]))
    assert watch.tolist() == [True, True, False, False, True] and like.tolist() == [False, True, False, False, True]
    out = classification(scored, watch, like)
    assert out["auc"]["watch"] == pytest.approx(4 / 6)  # positives 0.9, 0.5, 0.2 vs negatives 0.1, 0.8: 4 of 6 pairs
    # like among watched uses p_like / p_watch: 0.5 (movie 10), 0.8 (11), 0.5 (13): the liked 11 and 13 rank
    # 0.8 > 0.5 and 0.5 = 0.5 against the unliked 10 -> (1 + 0.5) / 2
    assert out["auc"]["like_watched"] == pytest.approx(0.75)


def test_missing_keys_names_what_is_missing():
    lists = {k: 0.1 for k in LIST_METRICS}
    full = {"dataset": "x", "protocol": "last_n", "users": 3, "auc": {"watch": 0.7, "like": 0.7},
            "gauc": {"watch": 0.7, "like": 0.7}, "logloss": {"watch": 0.3, "like": 0.3}, "final": dict(lists),
            "recall_only": dict(lists), "channels": {"itemcf": dict(lists)},
            "ablations": {"no_din": {"gauc": {}, "final": {}}}}
    assert missing_keys(full) == []
    broken = {**full, "final": {k: v for k, v in lists.items() if k != "ndcg@20"}, "gauc": {"watch": 0.7}}
    del broken["ablations"]
    assert set(missing_keys(broken)) == {"ablations", "gauc.like", "final.ndcg@20"}
    assert "channels.<at least one>" in missing_keys({**full, "channels": {}})


class Fake:
    """A checkpoint stand-in scoring by movie id: the ranker's order is checkable by hand (module level: the
    re-rank's worker processes receive it pickled)."""

    tasks = ("watch",)

    def builder(self, store):
        return lambda table, group_histories=False: {"movie": table.column("movie_id").to_numpy()}

    def score_batches(self, batches):
        return {"watch": np.concatenate([b["movie"] / 100.0 for b in batches])}


def test_rerank_orders_each_users_candidates_by_the_ranker(tmp_path):
    """Re-ranking scores every merged candidate once, ranks 1..n per user by p(watch), and the rows equal
    what the feature engine gives for those (user, movie, test start) rows."""
    from movielens_assets.core.ranking.rerank import candidate_rows, rerank
    from movielens_assets_tests.core.ranking import tiny_protocol

    t = tiny_protocol.build(tmp_path / "d")
    base = tiny_protocol.window_merged(t.store)
    merged = base.append_column("channels", pa.array([["itemcf"]] * base.num_rows))
    users = np.asarray(t.store.user_ids)[np.asarray(t.store.test_start) != np.iinfo(np.int64).max][:5]
    starts = np.asarray(t.store.test_start)[t.store.user_index(users)]
    rows = candidate_rows(t.store, t.engine, merged, users, starts)
    assert rows.num_rows == 15 * 5 and (rows.column("cutoff_ts").to_numpy() == np.repeat(starts, 15)).all()
    local = np.searchsorted(users, rows.column("user_id").to_numpy())
    chunk = t.engine.chunk(t.store, t.store.user_index(users))
    direct = t.engine.compute(chunk, local, rows.column("movie_id").to_numpy(), rows.column("cutoff_ts").to_numpy())
    np.testing.assert_array_equal(rows.column("u_log_count").to_numpy(), direct["u_log_count"])
    assert not np.isnan(rows.column("ch_merged_rank").to_numpy()).any()

    out = rerank({"fake": Fake()}, t.store, t.engine, merged, users)["fake"]
    for u in users:
        mine = out.filter(pa.compute.equal(out["user_id"], int(u)))
        assert mine["rank"].to_pylist() == list(range(1, 16))
        assert mine["movie_id"].to_pylist() == sorted(mine["movie_id"].to_pylist(), reverse=True)
    # chunks scored by two worker processes (from a fork server) give the same table, in the same order
    parallel = rerank({"fake": Fake()}, t.store, t.engine, merged, users, users_per_chunk=2, workers=2)["fake"]
    assert parallel.equals(out)
