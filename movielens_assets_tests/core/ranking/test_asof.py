"""The point-in-time primitive against a plain statement of its rule."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_assets.core.ranking.asof import AsOfIndex


def _reference(keys, times, values, qk, qt):
    count = np.array([((keys == a) & (times < b)).sum() for a, b in zip(qk, qt, strict=True)])
    sums = np.array([values[(keys == a) & (times < b)].sum(axis=0) for a, b in zip(qk, qt, strict=True)])
    return count, sums


def test_counts_and_sums_equal_the_rule():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 40, 5000) * 1_000_003  # sparse, large keys
    times = rng.integers(1_000_000_000, 1_000_005_000, 5000)
    values = rng.random((5000, 3))
    index = AsOfIndex(keys, times, {"v": values, "one": np.ones(5000)})
    qk = rng.integers(-3, 45, 2000) * 1_000_003
    qt = rng.integers(999_999_000, 1_000_006_000, 2000)
    count, sums = index.sums_before(qk, qt)
    ref_count, ref_sums = _reference(keys, times, values, qk, qt)
    np.testing.assert_array_equal(count, ref_count)
    np.testing.assert_allclose(sums["v"], ref_sums)
    np.testing.assert_array_equal(sums["one"], ref_count)
    np.testing.assert_array_equal(index.count_before(qk, qt), ref_count)


def test_equal_times_are_not_before():
    index = AsOfIndex(np.array([1, 1, 1]), np.array([10, 20, 20]), {"r": np.array([1.0, 2.0, 4.0])})
    count, sums = index.sums_before(np.array([1, 1, 1, 1, 2]), np.array([10, 11, 20, 21, 99]))
    assert count.tolist() == [0, 1, 1, 3, 0] and sums["r"].tolist() == [0.0, 1.0, 1.0, 7.0, 0.0]
    assert index.first_time_of(np.array([1, 2])).tolist() == [10, np.iinfo(np.int64).max]


def test_empty_index_and_bad_input():
    empty = AsOfIndex(np.zeros(0, np.int64), np.zeros(0, np.int64), {"r": np.zeros(0)})
    count, sums = empty.sums_before(np.array([1, 2]), np.array([5, 6]))
    assert count.tolist() == [0, 0] and sums["r"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="one length"):
        AsOfIndex(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="2 rows for 1 events"):
        AsOfIndex(np.array([1]), np.array([1]), {"r": np.array([1.0, 2.0])})
    with pytest.raises(ValueError, match="2\\^32"):
        AsOfIndex(np.array([1, 1]), np.array([0, 1 << 33]))


def test_save_and_memory_mapped_load_answer_the_same(tmp_path):
    rng = np.random.default_rng(1)
    keys, times = rng.integers(0, 20, 500), rng.integers(0, 100, 500)
    index = AsOfIndex(keys, times, {"r": rng.random(500)})
    index.save(tmp_path / "ix")
    loaded = AsOfIndex.load(tmp_path / "ix")
    qk, qt = rng.integers(0, 25, 300), rng.integers(-5, 110, 300)
    a, b = index.sums_before(qk, qt), loaded.sums_before(qk, qt)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1]["r"], b[1]["r"])
    assert isinstance(loaded.composite, np.memmap)
    # pickled (to a worker process): the mapped index as its directory, the in-memory one as its state
    import pickle

    for original, small in ((loaded, True), (index, False)):
        blob = pickle.dumps(original)
        again = pickle.loads(blob)
        assert (len(blob) < 1000) is small
        c = again.sums_before(qk, qt)
        np.testing.assert_array_equal(c[0], a[0])
        np.testing.assert_array_equal(c[1]["r"], a[1]["r"])


def test_sums_restart_at_each_key_and_a_query_after_the_last_event_reads_the_total():
    keys = np.r_[np.zeros(1000, np.int64), np.ones(3, np.int64), np.full(2, 7)]
    times = np.r_[np.arange(1000), np.array([5, 6, 7]), np.array([1, 1])]
    values = np.r_[np.full(1000, 4.5), np.array([0.5, 0.25, 0.125]), np.array([2.0, 3.0])]
    index = AsOfIndex(keys, times, {"v": values, "vv": np.c_[values, -values]})
    qk, qt = np.array([1, 1, 1, 0, 0, 7, 7, 5]), np.array([6, 7, 99, 10, 2000, 1, 2, 9])
    count, sums = index.sums_before(qk, qt)
    assert count.tolist() == [1, 2, 3, 10, 1000, 0, 2, 0]
    assert sums["v"].tolist() == [0.5, 0.75, 0.875, 45.0, 4500.0, 0.0, 5.0, 0.0]
    assert sums["vv"][:, 1].tolist() == (-sums["v"]).tolist()


def test_an_index_of_the_old_format_is_refused_with_the_asset_to_rematerialize(tmp_path):
    index = AsOfIndex(np.array([1, 2]), np.array([1, 2]), {"r": np.array([1.0, 2.0])})
    index.save(tmp_path / "ix")
    (tmp_path / "ix" / "meta.json").write_text('{"t0": 1, "values": ["r"]}')
    with pytest.raises(ValueError, match="format 1.*item_profile"):
        AsOfIndex.load(tmp_path / "ix")


def test_locality_order_sorts_and_is_a_permutation():
    from movielens_assets.core.ranking.asof import locality_order

    rng = np.random.default_rng(3)
    small = rng.integers(0, 1 << 20, 10_000)
    order = locality_order(small)  # fits 63 bits with the index: exact
    assert np.array_equal(np.sort(order), np.arange(small.size))
    assert np.array_equal(small[order], np.sort(small))
    big = rng.integers(0, 1 << 62, 5_000)  # top bits only: sorted up to the 13 dropped low bits
    order = locality_order(big)
    assert np.array_equal(np.sort(order), np.arange(big.size))
    assert np.all(np.diff(big[order] >> 13) >= 0)
    assert locality_order(np.zeros(0, np.int64)).size == 0 and locality_order(np.array([5])).tolist() == [0]
