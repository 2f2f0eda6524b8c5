"""From shards to a trained ranker: vocabularies, normalisation, batches, the streaming loader, a tiny training
run in process, the checkpoint round trip, re-ranking and the report."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.ranking.config import UnifiedRankerConfig
from movielens_assets.core.ranking.data import BatchBuilder, Normalizer, RankingVocab
from movielens_assets.core.ranking.loader import SampleStream, StreamConfig, role_mask, row_groups
from movielens_assets.core.ranking.samples import SamplingConfig, write_shard
from movielens_assets.core.ranking.trainer import (
    RankerCheckpoint,
    TrainConfig,
    ablation,
    classification_metrics,
    feature_columns,
    first_rows,
    fit_ranker,
    predict,
    ranker_runs,
    train_rankers,
)
from movielens_assets_tests.core.ranking import tiny_protocol

SMALL_MODEL = UnifiedRankerConfig(embed_dim=8, expert_hidden=(16,), tower_hidden=(8,), n_experts=2, history_len=8,
                                  semantic_rank=4, lr=0.01)


def _builder(t, files, tables) -> BatchBuilder:
    """A batch builder (history length 8) with the normalisation fitted on `tables` (Arrow tables of samples)."""
    names = feature_columns(files)
    return BatchBuilder(t.store, RankingVocab.build(t.store, t.items), Normalizer.fit(
        {n: np.concatenate([tb.column(n).to_numpy(zero_copy_only=False) for tb in tables]) for n in names}), 8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    t = tiny_protocol.build(root / "data")
    files = []
    for k in range(2):
        out = root / "samples" / f"shard={k:02d}"
        write_shard(out, store=t.store, engine=t.engine, circulation=t.circulation, interacted=t.interacted,
                    candidates=t.candidates, catalogue=t.items.movie_ids, shard=k, n_shards=2,
                    config=SamplingConfig(valid_fraction=0.3))
        files.append(out / "part-0.parquet")
    return t, files


@pytest.fixture(scope="module")
def fitted(tiny, tmp_path_factory):
    t, files = tiny
    # min_gain_z=0: any validation gain makes a new best epoch (the tiny validation set has too few users for
    # a significant one: with the default rule epoch 1 would stay the best and the test below would see it)
    config = TrainConfig(epochs=8, batch_size=64, num_workers=0, normalizer_rows=10_000, patience=8, min_gain_z=0.0)
    result = fit_ranker(files, t.store, t.items, SMALL_MODEL, config)
    out = tmp_path_factory.mktemp("ckpt") / "ranker"
    RankerCheckpoint(result.model, result.vocab, result.normalizer, result.item_tables, config,
                     {"name": "test"}).save(out, first_rows(result.valid_batches, 64))
    return result, config, out


def test_vocab_and_item_tables(tiny):
    t, _ = tiny
    vocab = RankingVocab.build(t.store, t.items)
    assert vocab.user_index(np.array([t.store.user_ids[0], 10**9])).tolist() == [1, 0]
    assert vocab.item_index(np.array([t.items.movie_ids[3], -1, 10**9])).tolist() == [4, 0, 0]
    tables = vocab.item_tables(t.items)
    n = vocab.sizes["items"]
    assert tables["genres"].shape[0] == n and (tables["genres"][0] == 0).all()
    row = 1 + 5  # the 6th movie of the table
    expected = sorted(1 + np.flatnonzero(t.items.genre_share[5] > 0))
    assert sorted(g for g in tables["genres"][row] if g) == expected
    assert tables["directors"].shape == (n, 2) and tables["cast"].shape == (n, 3)
    assert (tables["directors"] < vocab.sizes["directors"]).all() and (tables["cast"] < vocab.sizes["cast"]).all()
    assert tables["semantic"].shape[0] == n and not tables["semantic_mask"][0]
    assert tables["year_bucket"].max() < vocab.sizes["year_buckets"] and tables["year_bucket"][0] == 0


def test_normalizer_is_robust_clipped_and_marks_missing():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 1000.0])
    norm = Normalizer.fit({"a": x, "b": np.arange(7.0)})
    assert norm.indicators == ("a",) and norm.output_names == ("a", "b", "a_missing")
    out = norm.transform({"a": np.array([norm.center[0], np.nan, 1e9]), "b": np.array([3.0, 3.0, 3.0])})
    assert out.shape == (3, 3) and out[0, 0] == 0.0 and out[1, 0] == 0.0 and out[2, 0] == 5.0
    assert out[:, 2].tolist() == [0.0, 1.0, 0.0]
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(again.transform({"a": x, "b": x}), norm.transform({"a": x, "b": x}))


def test_batches_gather_the_history_before_the_cut_off(tiny):
    t, files = tiny
    table = pq.read_table(files[0]).slice(0, 50)
    names = feature_columns(files)
    builder = _builder(t, files, [table])
    batch = builder(table)
    users = table.column("user_id").to_numpy()
    seq = table.column("seq_pos").to_numpy()
    movies, ratings, ts, mask = t.store.history(t.store.user_index(users), seq, 8)
    np.testing.assert_array_equal(batch["hist_mask"], mask)
    np.testing.assert_array_equal(batch["hist_items"], np.where(mask, builder.vocab.item_index(movies), 0))
    assert (ts[mask] < np.repeat(table.column("cutoff_ts").to_numpy(), 8).reshape(-1, 8)[mask]).all()
    assert (batch["hist_log_gap"][mask] >= 0).all() and (batch["hist_log_gap"][~mask] == 0).all()
    assert batch["dense"].shape == (50, builder.normalizer.width) and batch["watch"].dtype == np.float32
    assert not {"rating", "movie_id"} & set(names)


def test_the_stream_covers_each_role_once_per_epoch_across_workers(tiny):
    t, files = tiny
    units = row_groups(files)
    tables = [pq.read_table(f) for f in files]
    builder = _builder(t, files, tables)
    for role in ("train", "train_window", "valid", "all"):
        expected = sum(int(role_mask(tb.column("valid").to_numpy(), tb.column("in_window").to_numpy(), role).sum())
                       for tb in tables)
        stream = SampleStream(units, builder, StreamConfig(batch_size=100, role=role, mix_units=1))
        got = sum(b["item"].shape[0] for w in range(2) for b in stream.iterate(w, 2))
        assert got == expected, role
    assert expected > 0
    valid_rows = [b for b in SampleStream(units, builder, StreamConfig(batch_size=64, role="valid")).iterate()]
    assert valid_rows and all(b["watch"].sum() >= 0 for b in valid_rows)
    bounded = SampleStream(units, builder, StreamConfig(batch_size=100, max_rows=300))
    assert sum(b["item"].shape[0] for b in bounded.iterate()) == 300
    shuffled = SampleStream(units, builder, StreamConfig(batch_size=50, mix_units=2))
    first = next(iter(shuffled.iterate()))["item"]
    shuffled.set_epoch(1)
    assert not np.array_equal(first, next(iter(shuffled.iterate()))["item"])
    with pytest.raises(ValueError, match="unknown role"):
        SampleStream(units, builder, StreamConfig(role="test"))


def test_a_tiny_training_run_learns_and_logs(fitted, tiny):
    result, config, _ = fitted
    t, files = tiny
    log = result.log
    assert len(log.epochs) == config.epochs and 1 <= log.best_epoch <= config.epochs and log.device == "cpu"
    for entry in log.epochs:
        assert entry["samples"] > 0 and entry["samples_per_s"] > 0 and np.isfinite(entry["loss"])
        assert set(entry["valid"]["gauc"]) == {"watch", "like", "like_watched"}
    assert log.epochs[0]["vs_best"] is None and all(e["vs_best"]["se"] > 0 for e in log.epochs[1:])
    assert log.epochs[-1]["loss"] < 0.8 * log.epochs[0]["loss"]
    # the optimisation works end to end (the streamed batches, both optimizers, the restored best epoch): the
    # training rows are told apart (30 users are too few to measure generalisation; the pipeline's numbers are
    # in docs/EVALUATION.md)
    stream = SampleStream(row_groups(files), BatchBuilder(t.store, result.vocab, result.normalizer, 8),
                          StreamConfig(batch_size=512, role="train", shuffle=False))
    probs, labels = predict(result.model, stream.iterate())
    assert classification_metrics(probs, labels)["auc"]["watch"] > 0.8
    assert result.model.config.dense_features == result.normalizer.width
    assert result.model.config.n_users == result.vocab.sizes["users"]


def test_the_checkpoint_reloads_and_scores_identically(fitted, tiny):
    result, _, out = fitted
    check = RankerCheckpoint.verify(out)
    assert check["passed"] and check["rows"] == 64 and check["max_abs_diff"] == 0.0
    loaded = RankerCheckpoint.load(out)
    t, files = tiny
    table = pq.read_table(files[1]).slice(0, 200)
    a = loaded.score_batches([loaded.builder(t.store)(table)])
    b = RankerCheckpoint(result.model, result.vocab, result.normalizer, result.item_tables,
                         loaded.train_config, {}).score_batches([loaded.builder(t.store)(table)])
    np.testing.assert_array_equal(a["watch"], b["watch"])
    assert loaded.meta == {"name": "test"} and loaded.tasks == ("watch", "like")
    # a checkpoint whose weights changed no longer reproduces its stored scores
    import torch

    state = torch.load(out / "model.pt", weights_only=True)
    key = next(k for k in state if k.endswith("weight") and state[k].dtype == torch.float32)
    state[key] = state[key] + 0.5
    torch.save(state, out / "model.pt")
    assert not RankerCheckpoint.verify(out)["passed"]


def test_ablations_and_excluded_features(tiny):
    t, files = tiny
    model, train = ablation("no_recall_features", SMALL_MODEL, TrainConfig())
    assert not [n for n in feature_columns(files, train.exclude_features) if n.startswith("ch_")]
    assert [n for n in feature_columns(files) if n.startswith("ch_")]
    assert ablation("no_din", SMALL_MODEL, TrainConfig())[0].use_din is False
    assert ablation("single_task", SMALL_MODEL, TrainConfig())[0].tasks == ("watch",)
    assert ablation("full_same_budget", SMALL_MODEL, TrainConfig())[0] == SMALL_MODEL
    with pytest.raises(ValueError, match="unknown ablation"):
        ablation("no_ranker", SMALL_MODEL, TrainConfig())
    with pytest.raises(ValueError, match="no rows"):
        fit_ranker([], t.store, t.items, SMALL_MODEL, TrainConfig())


def test_train_rankers_saves_every_run_and_reports_the_full_model(tiny, tmp_path):
    t, files = tiny
    config = TrainConfig(epochs=2, batch_size=64, num_workers=0, normalizer_rows=10_000)
    runs = ranker_runs(SMALL_MODEL, config, ["no_din"], ablation_epochs=1)
    assert list(runs) == ["unified_ranker", "no_din"] and runs["no_din"][1].epochs == 1
    assert runs["no_din"][0].use_din is False and runs["unified_ranker"] == (SMALL_MODEL, config)
    with pytest.raises(ValueError, match="unknown ablation"):
        ranker_runs(SMALL_MODEL, config, ["no_ranker"])
    lines: list[str] = []
    done = train_rankers(files, t.store, t.items, runs, lambda name: tmp_path / name, {"dataset": "tiny"},
                         log=lines.append)
    assert set(done.summary) == {"unified_ranker", "no_din"}
    assert {"best_epoch", "valid_gauc", "samples_per_s", "train_seconds"} == set(done.summary["no_din"])
    for name in runs:
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        assert meta["name"] == name and meta["data"] == {"dataset": "tiny"} and meta["ablations"] == ["no_din"]
        assert RankerCheckpoint.verify(tmp_path / name)["passed"]
    full = done.full
    assert full is not None and full.out == tmp_path / "unified_ranker" and len(full.epochs) <= 2
    assert (full.out / "training_curve.png").is_file() and not (tmp_path / "no_din" / "training_curve.png").exists()
    assert full.parameters > 0 and full.train_config["epochs"] == 2 and full.model_config["use_din"] is True
    assert any(line.startswith("training no_din on cpu (1 epochs") for line in lines)


def test_packed_batches_unpack_to_the_same_inputs(tiny):
    from movielens_assets.core.ranking.loader import pack_batch, unpack_batch

    t, files = tiny
    table = pq.read_table(files[0]).slice(0, 40)
    batch = _builder(t, files, [table])(table)
    packed = pack_batch(batch)
    assert set(packed) == {"ints", "floats", "mask"}
    out = unpack_batch(packed)
    assert set(out) == set(batch)
    for key, value in batch.items():
        np.testing.assert_array_equal(out[key].numpy(), value, err_msg=key)


def test_vocabulary_lookup_tables_equal_the_binary_search():
    from movielens_assets.core.ranking.data import _index, _indices, _lookup_table

    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(1, 300_000, 5_000))
    raw = np.concatenate([rng.integers(-3, 320_000, 20_000), ids[:5], [ids[-1], ids[-1] + 1, 0, -1]])
    np.testing.assert_array_equal(_indices(ids, _lookup_table(ids), raw), _index(ids, raw))
    assert _lookup_table(np.array([10**9])) is None  # too large for a table: the binary search


def test_window_share_tilts_each_epoch_toward_the_window_rows(tiny):
    from movielens_assets.core.ranking.trainer import _other_fraction

    t, files = tiny
    units = row_groups(files)
    tables = [pq.read_table(f) for f in files]
    window = sum(int(((tb["in_window"].to_numpy() == 1) & (tb["valid"].to_numpy() == 0)).sum()) for tb in tables)
    other = sum(int(((tb["in_window"].to_numpy() == 0) & (tb["valid"].to_numpy() == 0)).sum()) for tb in tables)
    fraction = _other_fraction(units, "train", 0.5)
    assert fraction == pytest.approx(window / other)  # equal numbers of window and other rows
    assert _other_fraction(units, "train", 0.01) == 1.0  # never more than every row
    with pytest.raises(ValueError, match="window_share"):
        _other_fraction(units, "train", 1.0)
    builder = _builder(t, files, tables)
    counts = []
    for epoch in (0, 1):
        stream = SampleStream(units, builder, StreamConfig(batch_size=10_000, other_fraction=fraction))
        stream.set_epoch(epoch)
        seen = [b for b in stream.iterate()]
        counts.append(sum(b["item"].shape[0] for b in seen))
    assert all(abs(c - 2 * window) < 0.25 * window for c in counts)  # window rows all kept, others ~ as many


def test_a_new_best_epoch_needs_a_significant_paired_gain():
    from movielens_assets.core.ranking.trainer import _improves

    rng = np.random.default_rng(0)
    users = np.arange(200)
    n = rng.integers(5, 50, users.size).astype(float)
    best = (users, rng.uniform(0.6, 0.9, users.size), n)
    assert _improves(best, None, 2.0) == (True, None)  # the first epoch with a GAUC is the best so far
    assert _improves((users[:0], np.zeros(0), np.zeros(0)), None, 2.0)[0] is False  # no GAUC at all
    noise = (users, best[1] + rng.normal(0.002, 0.05, users.size), n)  # +0.002 on average, per-user noise 0.05
    better, vs = _improves(noise, best, 2.0)
    assert not better and vs["se"] > 0.002 and vs["z"] == 2.0
    assert _improves(noise, best, 0.0)[0] is (vs["gain"] > 0)  # z = 0: any gain, the old rule
    real = (users, best[1] + rng.normal(0.02, 0.05, users.size), n)  # a gain several SE wide
    better, vs = _improves(real, best, 2.0)
    assert better and vs["gain"] > 2 * vs["se"]
    with pytest.raises(ValueError, match="validation users changed"):
        _improves((users + 1, best[1], n), best, 2.0)


def test_scoring_forms_agree_and_the_item_table_follows_the_weights(fitted, tiny):
    """Scoring (no gradients) reads a cached table of every item and may group the rows of one history; both
    give the training-time forward's scores, and the cache is rebuilt when the weights change."""
    import copy

    import torch

    result, _, _ = fitted
    t, files = tiny
    model = copy.deepcopy(result.model).eval()  # its weights are changed below
    table = pq.read_table(files[0]).slice(0, 300).sort_by([("user_id", "ascending"), ("seq_pos", "ascending")])
    builder = BatchBuilder(t.store, result.vocab, result.normalizer, 8)
    flat, grouped = builder(table), builder(table, group_histories=True)
    groups = grouped["hist_group"]
    assert grouped["hist_items"].shape[0] == groups.max() + 1 < table.num_rows  # histories are shared
    np.testing.assert_array_equal(grouped["hist_items"][groups], flat["hist_items"])
    np.testing.assert_array_equal(grouped["hist_log_gap"][groups], flat["hist_log_gap"])
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in flat.items()}
    with torch.enable_grad():  # the training path: distinct items of the batch through the encoder
        reference = {k: v.detach() for k, v in model(tensors).items()}
    with torch.inference_mode():
        via_table = model(tensors)
        via_groups = model({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in grouped.items()})
    for task in model.config.tasks:
        torch.testing.assert_close(via_table[task], reference[task], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(via_groups[task], via_table[task], rtol=1e-5, atol=1e-5)
    before = model.item_table()
    with torch.no_grad():
        model.items.item_emb.weight[1:] += 0.1  # an in-place update, as an optimizer step makes
        after = model.item_table()
        assert not torch.equal(before[1:], after[1:])
        torch.testing.assert_close(after, model.items(torch.arange(model.config.n_items)))
