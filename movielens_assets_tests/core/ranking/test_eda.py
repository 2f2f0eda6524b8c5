"""Ranking EDA: coverage, single-feature AUCs and deciles from a samples table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from movielens_assets.core.ranking.eda import decile_plots, feature_group, markdown, summarise


def test_summaries_of_known_features(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    watch = (np.arange(n) % 10 == 0).astype(np.int8)
    like = (watch & (rng.random(n) < 0.5)).astype(np.int8)
    perfect = watch + rng.random(n) * 0.5  # every positive above every negative
    half_missing = np.where(np.arange(n) % 4 >= 2, np.nan, rng.random(n))
    table = pa.table({"watch": watch, "like": like, "i_log_count": perfect, "x_semantic_sim": half_missing,
                      "ch_itemcf_rank": -perfect})
    s = {x.name: x for x in summarise(table, ["i_log_count", "x_semantic_sim", "ch_itemcf_rank"])}
    assert s["i_log_count"].auc_watch == 1.0 and s["i_log_count"].coverage == 1.0
    assert s["ch_itemcf_rank"].auc_watch == 0.0 and s["ch_itemcf_rank"].group == "recall"
    assert s["x_semantic_sim"].coverage == 0.5 and 0.35 < s["x_semantic_sim"].auc_watch < 0.65
    assert s["i_log_count"].decile_watch_rate[-1] == 1.0 and s["i_log_count"].decile_watch_rate[0] == 0.0
    assert feature_group("u_mean_rating") == "user" and feature_group("i_tmdb_runtime") == "tmdb"
    plots = decile_plots(list(s.values()), tmp_path, 0.1)
    assert set(plots) == {"item", "semantic", "recall"} and all(p.stat().st_size > 1000 for p in plots.values())
    text = markdown(list(s.values()), rows=n, shards=["00"], dataset="x", base_rate=0.1, plots=plots)
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert lines[0].startswith("| `i_log_count`") or lines[0].startswith("| `ch_itemcf_rank`")  # strongest first
    assert lines[-1].startswith("| `x_semantic_sim`") and "![item](ranking_eda_item.png)" in text
