"""UnifiedRanker: the input contract, the ablation switches, gradients, loss, optimizers, persistence and a
tiny end-to-end fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from movielens_assets.core.ranking.layers import CrossNet, DINAttention, MeanPooling
from movielens_assets.core.ranking.model import (
    RowSparseAdam,
    UnifiedRanker,
    UnifiedRankerConfig,
    _step_rows,
    build_optimizers,
    ranker_loss,
    semantic_basis,
    sparse_parameters,
)

N_USERS, N_ITEMS, N_GENRES, N_YEARS, N_DIRECTORS, N_CAST, D_SEM, F, L = 20, 30, 6, 5, 7, 9, 10, 4, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread (on a busy 2-core box, 2 threads make these steps ~10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tables(seed: int = 0, directors: bool = True, cast: bool = True, semantic: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    genres = rng.integers(1, N_GENRES, (N_ITEMS, 3))
    genres[rng.random((N_ITEMS, 3)) < 0.4] = 0
    genres[0] = 0
    genres[1] = [0, 2, 0]  # padding between genres
    out = {"item_genres": genres, "item_year_bucket": rng.integers(0, N_YEARS, N_ITEMS)}
    if directors:
        d = rng.integers(0, N_DIRECTORS, (N_ITEMS, 2))
        d[:, 1][rng.random(N_ITEMS) < 0.7] = 0
        out["item_directors"] = d
    if cast:
        c = rng.integers(1, N_CAST, (N_ITEMS, 3))
        c[2] = 0  # an item without cast
        out["item_cast"] = c
    if semantic:
        out["item_semantic"] = rng.standard_normal((N_ITEMS, D_SEM)).astype(np.float32)
        mask = rng.random(N_ITEMS) < 0.8
        mask[3] = False
        out["item_semantic_mask"] = mask
    return out


def config(tb: dict, **kw) -> UnifiedRankerConfig:
    base = {"n_users": N_USERS, "n_items": N_ITEMS, "n_genres": N_GENRES, "n_year_buckets": N_YEARS,
            "n_directors": N_DIRECTORS if tb.get("item_directors") is not None else 0,
            "n_cast": N_CAST if tb.get("item_cast") is not None else 0,
            "semantic_dim": D_SEM if tb.get("item_semantic") is not None else 0, "semantic_rank": 4,
            "dense_features": F, "history_len": L, "embed_dim": 8, "attention_hidden": (8,),
            "expert_hidden": (16, 8), "tower_hidden": (4,), "n_experts": 3}
    return UnifiedRankerConfig(**(base | kw))


def model_for(tb: dict, seed: int = 0, **kw) -> UnifiedRanker:
    torch.manual_seed(seed)
    return UnifiedRanker(config(tb, **kw), **tb)


def batch(b: int = 16, seed: int = 0, f: int = F, length: int = L) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, length + 1, (b,), generator=g)
    lengths[0] = 0  # no history
    lengths[1] = length  # full
    mask = torch.arange(length).unsqueeze(0) >= (length - lengths).unsqueeze(1)  # right-aligned
    hist = torch.where(mask, torch.randint(0, N_ITEMS, (b, length), generator=g), 0)
    out = {
        "user": torch.randint(0, N_USERS, (b,), generator=g),
        "item": torch.randint(0, N_ITEMS, (b,), generator=g),
        "hist_items": hist,
        "hist_mask": mask,
        "hist_ratings": torch.where(mask, torch.randint(1, 11, (b, length), generator=g) / 2.0, 0.0),
        "hist_log_gap": torch.where(mask, torch.rand(b, length, generator=g) * 5, 0.0),
        "watch": torch.randint(0, 2, (b,), generator=g).float(),
        "like": torch.randint(0, 2, (b,), generator=g).float(),
    }
    if f:
        out["dense"] = torch.randn(b, f, generator=g)
    return out


def grad_values(p: torch.Tensor) -> torch.Tensor:
    return p.grad.coalesce().values() if p.grad.is_sparse else p.grad


# ----------------------------------------------------------------------------------------- shapes / switches


@pytest.mark.parametrize("optional", [True, False])
def test_forward_shapes_with_and_without_optional_item_inputs(optional):
    tb = tables(directors=optional, cast=optional, semantic=optional)
    model = model_for(tb)
    assert (model.items.director_emb is not None) == optional
    assert (model.items.semantic_proj is not None) == optional
    out = model(batch())
    assert list(out) == ["watch", "like"]
    assert all(v.shape == (16,) and torch.isfinite(v).all() for v in out.values())


def test_no_dense_features():
    tb = tables()
    model = model_for(tb, dense_features=0)
    assert model.input_dim == 3 * 8
    out = model(batch(f=0))
    assert out["watch"].shape == (16,)


def test_single_task_returns_only_watch():
    tb = tables()
    model = model_for(tb, tasks=("watch",))
    out = model(batch())
    assert list(out) == ["watch"]
    _, parts = ranker_loss(out, batch(), model.config.weights_by_task)
    assert list(parts) == ["watch"]


def test_ablation_switches_build_and_run():
    tb = tables()
    no_din = model_for(tb, use_din=False)
    assert isinstance(no_din.pooling, MeanPooling)
    no_cross = model_for(tb, use_cross=False)
    assert isinstance(no_cross.cross, torch.nn.Identity)
    low_rank = model_for(tb, cross_rank=2)
    full = model_for(tb)
    assert isinstance(full.pooling, DINAttention) and isinstance(full.cross, CrossNet)
    for model in (no_din, no_cross, low_rank):
        out = model(batch())
        assert all(v.shape == (16,) for v in out.values())
    # "no DIN" pools the history with the masked mean of the keys
    feats = no_din.features(batch())
    mask = batch()["hist_mask"]
    ref = (feats["keys"] * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    torch.testing.assert_close(feats["pooled"], ref)


def test_any_history_length_and_no_positional_dependence():
    """Right- vs left-aligned histories (and longer padding) give the same scores."""
    tb = tables()
    model = model_for(tb)
    b = batch()
    right = model(b)
    lengths = b["hist_mask"].sum(1)
    left = dict(b)
    order = torch.argsort((~b["hist_mask"]).to(torch.int8), dim=1, stable=True)  # real entries first, in order
    for key in ("hist_items", "hist_mask", "hist_ratings", "hist_log_gap"):
        left[key] = torch.gather(b[key], 1, order)
    assert torch.equal(left["hist_mask"].sum(1), lengths) and left["hist_mask"][:, 0][lengths > 0].all()
    longer = dict(b)
    for key in ("hist_items", "hist_mask", "hist_ratings", "hist_log_gap"):
        longer[key] = torch.cat([torch.zeros_like(b[key][:, :4]), b[key]], dim=1)  # L + 4
    for other in (model(left), model(longer)):
        for t in right:
            torch.testing.assert_close(other[t], right[t], rtol=1e-5, atol=1e-6)


def test_padding_content_is_ignored():
    """Changing the ids, ratings and gaps at padded positions changes nothing."""
    tb = tables()
    model = model_for(tb)
    b = batch()
    pad = ~b["hist_mask"]
    noisy = dict(b)
    noisy["hist_items"] = torch.where(pad, torch.randint(0, N_ITEMS, pad.shape), b["hist_items"])
    noisy["hist_ratings"] = torch.where(pad, 4.5, b["hist_ratings"])
    noisy["hist_log_gap"] = torch.where(pad, 3.0, b["hist_log_gap"])
    for t, v in model(b).items():
        torch.testing.assert_close(model(noisy)[t], v, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------- item representation


def test_item_representation_is_one_method_for_candidates_and_history():
    tb = tables()
    model = model_for(tb)
    b = batch(b=32)
    feats = model.features(b)
    direct = model.item_representation(torch.arange(N_ITEMS))  # (n_items, D)
    torch.testing.assert_close(feats["candidate"], direct[b["item"]], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(feats["history"], direct[b["hist_items"]], rtol=1e-6, atol=1e-6)
    # the same vector whatever the batch it comes in, deduplicated or not
    sub = {k: v[3:9] for k, v in b.items()}
    torch.testing.assert_close(model.features(sub)["candidate"], feats["candidate"][3:9], rtol=1e-6, atol=1e-6)
    no_dedup = model_for(tb, dedup_items=False)
    no_dedup.load_state_dict(model.state_dict())
    for t, v in model(b).items():
        torch.testing.assert_close(no_dedup(b)[t], v, rtol=1e-5, atol=1e-6)


def test_item_representation_matches_a_plain_reference():
    tb = tables()
    model = model_for(tb, semantic_rank=None)  # the full Linear(d_sem, D)
    enc = model.items
    sem_mask = tb["item_semantic_mask"]
    with torch.no_grad():
        out = model.item_representation(torch.arange(N_ITEMS))
        for i in range(N_ITEMS):
            ref = enc.item_emb.weight[i].clone() if i else torch.zeros(8)  # unknown item 0: no id vector
            genres = [g for g in tb["item_genres"][i] if g]
            if genres:
                ref += enc.genre_table[genres].mean(0)
            ref += enc.year_table[tb["item_year_bucket"][i]]
            if sem_mask[i]:
                ref += enc.semantic_proj.weight @ torch.as_tensor(tb["item_semantic"][i])
            dirs = [d for d in tb["item_directors"][i] if d]
            if dirs:
                ref += enc.director_emb.weight[dirs].mean(0)
            cast = [c for c in tb["item_cast"][i] if c]
            if cast:
                ref += enc.cast_emb.weight[cast].mean(0)
            torch.testing.assert_close(out[i], ref, rtol=1e-5, atol=1e-6)


def test_semantic_rank_reduction_is_lossless_on_low_rank_vectors():
    """With semantic vectors in an r-dim subspace, the rank-r model equals the full Linear(d_sem, D) whose
    weight is W_r P^T; a masked-out item gets no semantic part."""
    tb = tables()
    rng = np.random.default_rng(3)
    tb["item_semantic"] = (rng.standard_normal((N_ITEMS, 3)) @ rng.standard_normal((3, D_SEM))).astype(np.float32)
    reduced = model_for(tb, semantic_rank=3)
    full = model_for(tb, semantic_rank=None)
    basis = reduced.items.semantic_basis  # (d_sem, 3)
    torch.testing.assert_close(basis.T @ basis, torch.eye(3), rtol=1e-5, atol=1e-5)
    state = reduced.state_dict()
    state["items.semantic_proj.weight"] = reduced.items.semantic_proj.weight @ basis.T  # W = W_r P^T
    state = {k: v for k, v in state.items() if k != "items.semantic_basis"}
    state["items.item_side"] = full.items.item_side
    full.load_state_dict(state)
    ids = torch.arange(N_ITEMS)
    torch.testing.assert_close(reduced.item_representation(ids), full.item_representation(ids), rtol=1e-4,
                               atol=1e-5)
    other = dict(tb)
    other["item_semantic"] = tb["item_semantic"].copy()
    other["item_semantic"][3] = 100.0  # item 3 is masked out: its vector must not matter
    twin = model_for(other, semantic_rank=None)
    twin.load_state_dict({k: v for k, v in full.state_dict().items() if k != "items.item_side"}, strict=False)
    torch.testing.assert_close(twin.item_representation(ids)[3], full.item_representation(ids)[3])


def test_semantic_basis_is_deterministic_in_sign():
    s = torch.randn(50, 8)
    b1, b2 = semantic_basis(s, 3), semantic_basis(s.clone(), 3)
    assert torch.equal(b1, b2)
    assert (b1[b1.abs().argmax(0), torch.arange(3)] > 0).all()


def test_tables_are_validated_against_the_config():
    tb = tables()
    with pytest.raises(ValueError, match="n_items"):
        UnifiedRanker(config(tb, n_items=N_ITEMS + 1), **tb)
    with pytest.raises(ValueError, match="outside"):
        UnifiedRanker(config(tb, n_cast=3), **tb)
    with pytest.raises(ValueError, match="exactly when"):
        UnifiedRanker(config(tb, n_directors=0), **tb)


# --------------------------------------------------------------------------------------- gradients and loss


def test_gradients_reach_every_parameter_in_one_backward():
    tb = tables()
    model = model_for(tb, attention_activation="prelu", cross_rank=3)
    loss, _ = ranker_loss(model(batch(b=64)), batch(b=64))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert grad_values(p).abs().sum() > 0, name


def test_padding_rows_of_id_tables_get_no_gradient():
    tb = tables()
    model = model_for(tb)
    b = batch(b=64)
    b["user"][:5] = 0  # unknown users
    loss, _ = ranker_loss(model(b), b)
    loss.backward()
    for emb in (model.user_emb, model.items.item_emb):
        g = emb.weight.grad.coalesce()
        rows = g.indices()[0]
        assert not (rows == 0).any() or g.values()[rows == 0].abs().sum() == 0
        assert torch.equal(emb.weight[0], torch.zeros_like(emb.weight[0]))


def test_loss_is_per_task_bce_with_the_configured_weights():
    tb = tables()
    model = model_for(tb, task_weights=(0.3, 2.0))
    b = batch()
    logits = model(b)
    total, parts = ranker_loss(logits, b, model.config.weights_by_task)
    manual = {}
    for t in ("watch", "like"):
        p = torch.sigmoid(logits[t])
        y = b[t]
        manual[t] = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        torch.testing.assert_close(parts[t], manual[t], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, 0.3 * manual["watch"] + 2.0 * manual["like"], rtol=1e-5, atol=1e-6)
    unweighted, _ = ranker_loss(logits, b)
    torch.testing.assert_close(unweighted, manual["watch"] + manual["like"], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ optimizers


@pytest.mark.parametrize("sparse", [True, False])
def test_build_optimizers_puts_every_parameter_in_exactly_one_optimizer(sparse):
    tb = tables()
    model = model_for(tb, sparse_embeddings=sparse, optimizer="adamw", weight_decay=0.01)
    opt = build_optimizers(model, model.config)
    seen = [id(p) for o in opt.optimizers for g in o.param_groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    assert len(seen) == len(set(seen))
    tables_ = {id(m.weight) for m in (model.user_emb, model.items.item_emb, model.items.director_emb,
                                      model.items.cast_emb)}
    assert isinstance(opt.dense, torch.optim.AdamW)
    if sparse:
        assert isinstance(opt.sparse, torch.optim.SparseAdam)
        assert {id(p) for g in opt.sparse.param_groups for p in g["params"]} == tables_
        assert {id(p) for p in sparse_parameters(model)} == tables_
    else:
        assert opt.sparse is None and sparse_parameters(model) == []
    b = batch()
    for _ in range(2):  # a full step runs
        loss, _ = ranker_loss(model(b), b)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("path", ["kernel", "rows"])
def test_row_sparse_adam_equals_torch_sparse_adam(path, monkeypatch):
    if path == "rows":  # the device-agnostic path, as on cuda / mps
        monkeypatch.setattr("movielens_assets.core.ranking.model._use_kernel", lambda p, s: False)
    torch.manual_seed(0)
    w0 = torch.randn(12, 3)
    ours, ref = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt_ours, opt_ref = RowSparseAdam([ours], lr=0.01), torch.optim.SparseAdam([ref], lr=0.01)
    for _ in range(6):
        idx = torch.randint(0, 12, (9,))  # duplicates, rows absent at some steps
        vals = torch.randn(9, 3)
        for p in (ours, ref):
            p.grad = torch.sparse_coo_tensor(idx.unsqueeze(0), vals, (12, 3), check_invariants=True)
        opt_ours.step()
        opt_ref.step()
        torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(opt_ours.state[ours][key], opt_ref.state[ref][key], rtol=1e-5, atol=1e-7)
    assert opt_ours.state[ours]["step"] == opt_ref.state[ref]["step"] == 6
    untouched = torch.ones(12, dtype=torch.bool)
    ours.grad = torch.sparse_coo_tensor(torch.tensor([[4]]), torch.ones(1, 3), (12, 3), check_invariants=True)
    before = ours.detach().clone()
    opt_ours.step()
    untouched[4] = False
    assert torch.equal(ours.detach()[untouched], before[untouched])


def test_step_rows_handles_maximize():
    w = torch.nn.Parameter(torch.zeros(4, 2))
    state = {"exp_avg": torch.zeros(4, 2), "exp_avg_sq": torch.zeros(4, 2)}
    grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, 2), (4, 2), check_invariants=True)
    with torch.no_grad():
        _step_rows(w, grad, state, 0.9, 0.999, 1e-8, 0.1, -1.0)
    assert (w[1] > 0).all() and torch.equal(w[0], torch.zeros(2))


# ------------------------------------------------------------------------------------------------ persistence


def test_config_round_trip():
    cfg = config(tables(), tasks=("watch",), task_weights=(2.0,), cross_rank=4)
    again = UnifiedRankerConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError):
        UnifiedRankerConfig(tasks=("watch",), task_weights=(1.0, 2.0))


def test_state_dict_round_trip_gives_identical_outputs():
    tb = tables()
    model = model_for(tb, seed=0)
    opt = build_optimizers(model, model.config)
    b = batch()
    for _ in range(3):  # move away from the initialisation
        loss, _ = ranker_loss(model(b), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    state = model.state_dict()
    assert "items.item_side" in state and "items.item_cast" in state  # the item tables travel with the weights
    again = UnifiedRanker(UnifiedRankerConfig.from_dict(model.config.to_dict()), **tb)
    torch.manual_seed(123)
    again.load_state_dict(state)
    again.eval()
    with torch.no_grad():
        for t, v in model(b).items():
            assert torch.equal(again(b)[t], v)


# ------------------------------------------------------------------------------------------------- training


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels > 0.5
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def test_tiny_model_overfits_a_learnable_signal():
    """watch = the candidate's id parity (learnable from the id embedding), like = the sign of a dense
    feature: 200 full-batch steps bring the loss well down and both training AUCs above 0.9."""
    tb = tables()
    model = model_for(tb, seed=0, lr=0.02)
    opt = build_optimizers(model, model.config)
    b = batch(b=256, seed=5)
    b["item"] = torch.randint(1, N_ITEMS, (256,))
    b["watch"] = (b["item"] % 2).float()
    b["like"] = (b["dense"][:, 0] > 0).float()
    first = None
    for _ in range(200):
        loss, _ = ranker_loss(model(b), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        out = model(b)
    assert float(loss.detach()) < 0.3 * first
    for t in ("watch", "like"):
        assert _auc(out[t].numpy(), b[t].numpy()) > 0.9, t
