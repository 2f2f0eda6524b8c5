"""Ranking samples of a shard: 1:9 per positive, negatives never rated, window cut-offs, disjoint shards, the
checks that read the files, atomic and deterministic writes."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.ranking import samples as samples_mod
from movielens_assets.core.ranking.samples import (
    CANDIDATE,
    FALLBACK,
    KEY_COLUMNS,
    POSITIVE,
    SamplingConfig,
    check_shard,
    write_shard,
)
from movielens_assets.core.ranking.sequences import NO_TIME
from movielens_assets.core.ranking.shards import shard_of
from movielens_assets_tests.core.ranking import tiny_protocol

N_SHARDS = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_protocol.build(tmp_path_factory.mktemp("samples"))


def _write(tiny, out, shard, n_shards=N_SHARDS, **config):
    return write_shard(out, store=tiny.store, engine=tiny.engine, circulation=tiny.circulation,
                       interacted=tiny.interacted, candidates=tiny.candidates, catalogue=tiny.items.movie_ids,
                       shard=shard, n_shards=n_shards, config=SamplingConfig(positives_per_chunk=50, **config))


@pytest.fixture(scope="module")
def shards(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    stats = [_write(tiny, root / f"shard={k:02d}", k) for k in range(N_SHARDS)]
    tables = [pq.read_table(root / f"shard={k:02d}" / "part-0.parquet") for k in range(N_SHARDS)]
    return root, stats, tables


def _expected_positives(store) -> np.ndarray:
    """Source rows whose cut-off (own time; window rows: the window start) is before the user's test start."""
    user = np.repeat(np.arange(store.n_users), np.diff(store.indptr))
    cutoff = np.where(np.asarray(store.in_window) == 1, store.window_start[user], store.ts)
    return np.flatnonzero(cutoff < store.test_start[user])


def test_every_source_row_is_a_positive_with_nine_negatives(tiny, shards):
    _, stats, tables = shards
    table = pa.concat_tables(tables)
    expected = _expected_positives(tiny.store)
    assert 0 < tiny.store.n_rows - expected.size < 0.1 * tiny.store.n_rows  # a few same-second ties only
    assert table.num_rows == 10 * expected.size and sum(s["positives"] for s in stats) == expected.size
    assert sum(s["source_rows_at_test_start"] for s in stats) == tiny.store.n_rows - expected.size
    pos = table.filter(pa.compute.equal(table["watch"], 1))
    assert sorted(pos["pos_id"].to_pylist()) == expected.tolist()
    groups = table.group_by("pos_id").aggregate([("watch", "sum"), ("watch", "count"), ("movie_id", "count_distinct")])
    assert set(groups["watch_sum"].to_pylist()) == {1} and set(groups["watch_count"].to_pylist()) == {10}
    assert set(groups["movie_id_count_distinct"].to_pylist()) == {10}  # no repeat within a group
    # the positive comes first in its group; labels: like = rating >= 4 on the positive only
    assert table["watch"].to_pylist()[::10] == [1] * expected.size
    like = dict(zip(pos["pos_id"].to_pylist(), pos["like"].to_pylist(), strict=True))
    assert all(like[i] == int(tiny.store.rating[i] >= 4) for i in expected.tolist())
    assert set(table.filter(pa.compute.equal(table["watch"], 0))["like"].to_pylist()) == {0}
    assert "rating" not in table.column_names and list(table.column_names[: len(KEY_COLUMNS)]) == list(KEY_COLUMNS)


def test_negatives_were_never_rated_by_their_user_even_in_test(tiny, shards):
    table = pa.concat_tables(shards[2])
    neg = table.filter(pa.compute.equal(table["watch"], 0))
    keys = (neg["user_id"].to_numpy().astype(np.int64) << 32) | neg["movie_id"].to_numpy().astype(np.int64)
    assert not np.isin(keys, tiny.interacted).any()
    # the candidate lists do hold rated movies (test items included): they were filtered out
    cand_keys = tiny.candidates.keys
    assert np.isin(cand_keys, tiny.interacted).sum() > 0


def test_window_rows_use_the_window_start_and_candidate_negatives(tiny, shards):
    s = tiny.store
    table = pa.concat_tables(shards[2]).to_pandas()
    pos = table[table.watch == 1]
    window_start = dict(zip(s.user_ids.tolist(), s.window_start.tolist(), strict=True))
    win = pos[pos.in_window == 1]
    expected = _expected_positives(s)
    assert len(win) == int(np.asarray(s.in_window)[expected].sum()) > 0
    assert (win.cutoff_ts == win.user_id.map(window_start)).all()
    other = pos[pos.in_window == 0]
    assert (other.cutoff_ts.to_numpy() == np.asarray(s.ts)[other.pos_id.to_numpy()]).all()
    assert (other.cutoff_ts <= other.user_id.map(window_start)).all()  # ties: same-second rows
    # seq_pos counts the user's rows strictly before the cut-off
    users_raw = np.repeat(s.user_ids, np.diff(s.indptr))
    for row in table.sample(200, random_state=0).itertuples():
        assert row.seq_pos == int(((users_raw == row.user_id) & (s.ts < row.cutoff_ts)).sum())
    # window groups take candidate negatives from the user's list; other groups never do
    cand = table[table.neg_source == CANDIDATE]
    assert len(cand) > 0 and (cand.in_window == 1).all()
    listed = set(zip((tiny.candidates.keys >> 32).tolist(), (tiny.candidates.keys & 0xFFFFFFFF).tolist(),
                     strict=True))
    assert all((u, m) in listed for u, m in zip(cand.user_id, cand.movie_id, strict=True))
    per_group = cand.groupby("pos_id").size()
    assert per_group.max() <= SamplingConfig.candidate_negatives
    # recall features: on window rows only, and the candidate negatives carry them
    assert table[table.in_window == 0].ch_merged_rank.isna().all()
    assert cand.ch_merged_rank.notna().all() and (cand.in_candidates == 1).all()
    valid = table[table.valid == 1]
    assert (valid.in_window == 1).all()


def test_shards_are_disjoint_and_every_check_passes(tiny, shards):
    root, _, tables = shards
    users = [set(t["user_id"].to_pylist()) for t in tables]
    assert set().union(*users) == set(tiny.store.user_ids.tolist())
    assert all(not (a & b) for i, a in enumerate(users) for b in users[i + 1 :])
    for k, t in enumerate(tables):
        assert set(shard_of(np.asarray(t["user_id"]), N_SHARDS).tolist()) <= {k}
        result = check_shard(duckdb.connect(), root / f"shard={k:02d}", ratings=tiny.ratings, test=tiny.test,
                             shard=k, n_shards=N_SHARDS, negatives=9)
        assert all(r["passed"] for r in result.values()), result


@pytest.mark.parametrize("tamper, failing", [
    ("drop_negative", "positive_to_negative_ratio"),
    ("rated_negative", "no_rated_negatives"),
    ("late_cutoff", "before_test_cutoff"),
    ("foreign_user", "users_in_their_shard"),
])
def test_each_check_catches_its_broken_file(tiny, shards, tmp_path, tamper, failing):
    root, _, tables = shards
    df = tables[0].to_pandas()
    if tamper == "drop_negative":
        df = df.drop(index=df.index[1])
    elif tamper == "rated_negative":
        i = df.index[(df.watch == 0)][0]
        rated = int(df.movie_id[df.index[0]]) if df.user_id[i] == df.user_id[df.index[0]] else None
        df.loc[i, "movie_id"] = rated if rated is not None else df.movie_id[df.index[0]]
        df.loc[i, "user_id"] = df.user_id[df.index[0]]
    elif tamper == "late_cutoff":
        df.loc[df.index[0], "cutoff_ts"] = NO_TIME - 1
    else:
        other = next(u for u in tiny.store.user_ids.tolist() if shard_of(np.array([u]), N_SHARDS)[0] != 0)
        df.loc[df.index[:10], "user_id"] = other
    (tmp_path / "bad").mkdir()
    pq.write_table(pa.Table.from_pandas(df, schema=tables[0].schema, preserve_index=False),
                   tmp_path / "bad" / "part-0.parquet")
    result = check_shard(duckdb.connect(), tmp_path / "bad", ratings=tiny.ratings, test=tiny.test, shard=0,
                         n_shards=N_SHARDS, negatives=9)
    assert not result[failing]["passed"], result
    if tamper != "foreign_user":  # (another user's name on these rows also breaks the rules tied to the user)
        assert [name for name, r in result.items() if not r["passed"]] == [failing]


def test_an_empty_shard_is_a_typed_empty_file(tiny, tmp_path):
    n = 200  # more shards than users: some shard has nobody
    empty = next(k for k in range(n) if not (shard_of(tiny.store.user_ids, n) == k).any())
    stats = _write(tiny, tmp_path / "empty", empty, n_shards=n)
    table = pq.read_table(tmp_path / "empty" / "part-0.parquet")
    assert stats["rows"] == table.num_rows == 0 and stats["users"] == 0
    assert table.schema.field("movie_id").type == pa.int32() and "u_mean_rating" in table.column_names
    result = check_shard(duckdb.connect(), tmp_path / "empty", ratings=tiny.ratings, test=tiny.test, shard=empty,
                         n_shards=n, negatives=9)
    assert all(r["passed"] for r in result.values())


def test_a_failed_build_keeps_the_previous_shard(tiny, tmp_path, monkeypatch):
    out = tmp_path / "shard=01"
    _write(tiny, out, 1)
    before = (out / "part-0.parquet").read_bytes()
    calls = {"n": 0}
    real = samples_mod.sample_table

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(samples_mod, "sample_table", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        _write(tiny, out, 1)
    assert (out / "part-0.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard=01"]


def test_same_seed_same_files_other_seed_other_negatives(tiny, tmp_path):
    a, b, c = (tmp_path / x for x in "abc")
    _write(tiny, a, 2)
    _write(tiny, b, 2)
    _write(tiny, c, 2, seed=1)
    ta, tb, tc = (pq.read_table(p / "part-0.parquet") for p in (a, b, c))
    assert ta.to_pandas().equals(tb.to_pandas())  # (pandas: NaN equals NaN, as "absent" should)
    assert ta["movie_id"].to_pylist() != tc["movie_id"].to_pylist()
    pa_, pc = (t.filter(pa.compute.equal(t["watch"], 1)).to_pandas() for t in (ta, tc))
    assert pa_.equals(pc)  # the positives do not depend on the seed


def test_negatives_fall_back_to_the_catalogue_when_nothing_is_in_circulation(tiny, tmp_path):
    """A user whose first ratings are the first of the whole dataset: nothing was rated before them, so their
    negatives come from the catalogue (and the ratio still holds)."""
    s = tiny.store
    first_user = int(np.asarray(s.user_ids)[np.searchsorted(s.indptr, np.argmin(s.ts), side="right") - 1])
    shard = int(shard_of(np.array([first_user]), N_SHARDS)[0])
    _write(tiny, tmp_path / "s", shard)
    table = pq.read_table(tmp_path / "s" / "part-0.parquet").to_pandas()
    first = table[table.pos_id == int(np.argmin(s.ts))]
    assert len(first) == 10 and (first.neg_source.iloc[1:] == FALLBACK).all()
    assert (table.neg_source == POSITIVE).sum() * 9 == (table.neg_source != POSITIVE).sum()


def test_bad_sampling_config_is_refused():
    with pytest.raises(ValueError, match="candidate_negatives"):
        SamplingConfig(negatives=3, candidate_negatives=5)
    with pytest.raises(ValueError, match="valid_fraction"):
        SamplingConfig(valid_fraction=1.5)
