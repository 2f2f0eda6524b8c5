"""`write_user_profiles`: one row per user and stage with a cut-off, the ranking features' own values there."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.ranking.profiles import write_user_profiles
from movielens_assets.core.ranking.sequences import NO_TIME
from movielens_assets_tests.core.ranking import tiny_protocol


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_protocol.build(tmp_path_factory.mktemp("profiles") / "data")


def test_user_profiles_are_the_features_at_each_cut_off(tiny, tmp_path):
    store, engine = tiny.store, tiny.engine
    path = tmp_path / "profiles" / "user_profile.parquet"
    rows = write_user_profiles(store, engine, path)
    table = pq.read_table(path)
    window, test = np.asarray(store.window_start), np.asarray(store.test_start)
    assert rows == table.num_rows == int((window != NO_TIME).sum() + (test != NO_TIME).sum()) > 0
    assert pq.read_schema(path).metadata[b"movielens.genres"].decode() == ",".join(engine.items.genres)
    assert {"user_id", "stage", "cutoff_ts", "seq_pos", "genre_share", "top_genres"} <= set(table.column_names)
    # the window row of every user with a window: the engine's user features at the window start
    chunk = engine.chunk(store, np.arange(store.n_users))
    sel = np.flatnonzero(chunk.window_start != NO_TIME)
    feats = engine.user_features(chunk, sel, chunk.window_start[sel])
    rows_w = table.filter(table["stage"].to_numpy(zero_copy_only=False) == "window")
    assert rows_w.column("user_id").to_numpy().tolist() == chunk.user_ids[sel].astype(np.int32).tolist()
    for name, values in feats.items():
        assert np.array_equal(rows_w.column(name).to_numpy(), values.astype(np.float32), equal_nan=True), name
