"""Ranking blocks (DIN, DCN-V2 cross, MMoE, MLP) and the masking helpers, each against a plain reference."""

from __future__ import annotations

import pytest
import torch

from movielens_assets.core.nn.masking import masked_count, masked_mean, masked_sum, masked_weighted_sum
from movielens_assets.core.ranking.layers import MLP, CrossNet, DINAttention, LowRankCrossNet, MeanPooling, MMoE
from movielens_assets.core.ranking.layers.mlp import PReLU

# ------------------------------------------------------------------------------------------------ masking


def test_masked_mean_is_sum_over_count_of_real_entries():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]],
                        dtype=torch.bool)
    for b in range(3):
        real = x[b][mask[b]]
        torch.testing.assert_close(masked_sum(x, mask)[b], real.sum(0))
        torch.testing.assert_close(masked_mean(x, mask)[b], real.sum(0) / len(real))
    assert torch.equal(masked_count(mask), torch.tensor([2.0, 3.0, 6.0, 0.0]))


def test_masked_mean_empty_rows_are_zero_and_padding_nan_never_leaks():
    x = torch.randn(3, 4, 2)
    x[0, 2:] = float("nan")  # padding holding garbage
    x[2] = float("inf")
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    x.requires_grad_(True)
    out = masked_mean(x, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[2], torch.zeros(2))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[~mask], torch.zeros_like(x.grad[~mask]))


def test_masked_mean_over_a_leading_dimension():
    x = torch.randn(2, 5, 4, 3)  # (B, L, G, D): mean over G
    mask = torch.rand(2, 5, 4) < 0.5
    out = masked_mean(x, mask, dim=2)
    ref = torch.zeros(2, 5, 3)
    for b in range(2):
        for i in range(5):
            if mask[b, i].any():
                ref[b, i] = x[b, i][mask[b, i]].mean(0)
    torch.testing.assert_close(out, ref)


def test_masked_weighted_sum_ignores_padded_weights():
    x = torch.randn(2, 4, 3)
    w = torch.randn(2, 4)
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    w_garbage = w.clone()
    w_garbage[~mask] = float("nan")
    out = masked_weighted_sum(x, w_garbage, mask)
    torch.testing.assert_close(out[0], w[0, 0] * x[0, 0] + w[0, 2] * x[0, 2])
    assert torch.equal(out[1], torch.zeros(3))


# ---------------------------------------------------------------------------------------------------- DIN


def _din(dim: int = 4, hidden=(8, 5), activation: str = "prelu", seed: int = 0) -> DINAttention:
    torch.manual_seed(seed)
    return DINAttention(dim, hidden, activation)


def _concat_logits(din: DINAttention, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The paper's form: MLP([q, k, q - k, q * k]) with the module's own weights, (B, D), (B, L, D) -> (B, L)."""
    qq = q.unsqueeze(1).expand_as(k)
    x = torch.cat([qq, k, qq - k, qq * k], dim=-1)
    return din.rest(din.first_act(din.first(x))).squeeze(-1)


def test_din_decomposed_attention_equals_the_concatenation_form():
    din = _din()
    q, k = torch.randn(6, 4), torch.randn(6, 7, 4)
    torch.testing.assert_close(din.attention_logits(q, k), _concat_logits(din, q, k), rtol=1e-5, atol=1e-6)


def test_din_forward_equals_a_plain_loop_reference():
    din = _din(activation="relu")
    torch.manual_seed(1)
    q, k = torch.randn(5, 4), torch.randn(5, 6, 4)
    mask = torch.rand(5, 6) < 0.6
    mask[0] = False  # one empty history
    out = din(q, k, mask)
    with torch.no_grad():
        for b in range(5):
            ref = torch.zeros(4)
            for pos in range(6):
                if not mask[b, pos]:
                    continue
                x = torch.cat([q[b], k[b, pos], q[b] - k[b, pos], q[b] * k[b, pos]])
                h = torch.relu(din.first(x))
                h = din.rest.layers[0](h)  # next hidden Linear
                h = torch.relu(h)
                logit = din.rest.layers[2](h)  # output Linear -> (1,): NOT softmax-normalised
                ref += logit[0] * k[b, pos]
            torch.testing.assert_close(out[b], ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(out[0], torch.zeros(4))


def test_din_padding_amount_and_place_do_not_change_the_pooled_vector():
    din = _din()
    torch.manual_seed(2)
    q = torch.randn(1, 4)
    real = torch.randn(3, 4)  # the same 3 real history entries, oldest first
    outs = []
    for length, positions in ((3, [0, 1, 2]), (8, [5, 6, 7]), (8, [0, 1, 2]), (12, [1, 6, 10])):
        k = torch.randn(1, length, 4) * 100  # padding holds arbitrary values
        mask = torch.zeros(1, length, dtype=torch.bool)
        k[0, positions] = real
        mask[0, positions] = True
        outs.append(din(q, k, mask))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-6, atol=1e-6)


def test_din_padding_receives_no_gradient_and_empty_rows_pool_to_zero():
    din = _din()
    q = torch.randn(3, 4, requires_grad=True)
    k = torch.randn(3, 5, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = din(q, k, mask)
    assert torch.equal(out[2], torch.zeros(4))
    (out * torch.randn_like(out)).sum().backward()
    assert torch.equal(k.grad[~mask], torch.zeros_like(k.grad[~mask]))
    assert k.grad[mask].abs().sum() > 0
    assert torch.equal(q.grad[2], torch.zeros(4))  # nothing to attend to: the query has no effect


def test_din_weights_are_not_normalised_and_padding_weight_is_exactly_zero():
    din = _din()
    q, k = torch.randn(4, 4), torch.randn(4, 6, 4)
    mask = torch.rand(4, 6) < 0.5
    w = din.weights(q, k, mask)
    assert torch.equal(w[~mask], torch.zeros_like(w[~mask]))
    assert not torch.allclose(w.sum(1)[mask.any(1)], torch.ones(int(mask.any(1).sum())))


def test_mean_pooling_is_the_masked_mean_and_ignores_the_query():
    pool = MeanPooling(4)
    k = torch.randn(3, 5, 4)
    mask = torch.rand(3, 5) < 0.5
    torch.testing.assert_close(pool(torch.randn(3, 4), k, mask), masked_mean(k, mask))
    assert len(list(pool.parameters())) == 0


@pytest.mark.parametrize("activation, hidden", [("relu", (8,)), ("prelu", (8, 5))])
def test_grouped_pooling_equals_the_gathered_histories(activation, hidden):
    """Rows sharing a history (a user's candidates): `pool_grouped` over (G, L, D) keys gives forward() of the
    gathered (B, L, D) keys — for sorted and shuffled rows, uneven groups (a history with no real entry
    included), a multi-layer attention unit, with gradients, and in the fallback for very uneven groups."""
    din = _din(hidden=hidden, activation=activation)
    pool = MeanPooling(4)
    torch.manual_seed(1)
    k = torch.randn(5, 7, 4)
    mask = torch.rand(5, 7) < 0.6
    mask[3] = False  # an empty history
    for group in (torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 4, 4, 4, 4]),  # sorted, uneven
                  torch.tensor([4, 0, 2, 4, 1, 0, 3, 2, 4, 0, 3, 4]),  # shuffled
                  torch.tensor([0] * 9 + [1, 2, 3, 4])):  # padding would more than double the rows: fallback
        q = torch.randn(group.numel(), 4, requires_grad=True)
        expected = din(q, k[group], mask[group])
        got = din.pool_grouped(q, k, mask, group)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        (g_exp,) = torch.autograd.grad(expected.sum(), q)
        (g_got,) = torch.autograd.grad(got.sum(), q)
        torch.testing.assert_close(g_got, g_exp, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(pool.pool_grouped(q, k, mask, group), pool(q, k[group], mask[group]))
    assert din.pool_grouped(torch.zeros(0, 4), k, mask, torch.zeros(0, dtype=torch.long)).shape == (0, 4)


# -------------------------------------------------------------------------------------------------- cross


def test_cross_net_full_rank_matches_the_formula():
    torch.manual_seed(0)
    net = CrossNet(5, n_layers=3)
    x0 = torch.randn(4, 5)
    x = x0
    for layer in net.layers:
        x = x0 * (x @ layer.weight.T + layer.bias) + x  # x_{l+1} = x_0 * (W_l x_l + b_l) + x_l
    torch.testing.assert_close(net(x0), x)


def test_low_rank_cross_net_matches_the_formula_with_fewer_parameters():
    torch.manual_seed(0)
    d, r = 12, 3
    net = LowRankCrossNet(d, n_layers=2, rank=r)
    x0 = torch.randn(4, d)
    x = x0
    for v, u in zip(net.v, net.u, strict=True):
        w = u.weight @ v.weight  # W = U V^T, (d, d) of rank r
        assert torch.linalg.matrix_rank(w) == r
        x = x0 * (x @ w.T + u.bias) + x
    torch.testing.assert_close(net(x0), x, rtol=1e-5, atol=1e-6)
    n_low = sum(p.numel() for p in net.parameters())
    n_full = sum(p.numel() for p in CrossNet(d, n_layers=2).parameters())
    assert n_low == 2 * (2 * d * r + d) < n_full == 2 * (d * d + d)


def test_cross_net_with_zero_layers_is_the_identity():
    x0 = torch.randn(3, 7)
    assert torch.equal(CrossNet(7, n_layers=0)(x0), x0)
    assert torch.equal(LowRankCrossNet(7, n_layers=0, rank=2)(x0), x0)


# --------------------------------------------------------------------------------------------------- MMoE


def test_mmoe_gates_sum_to_one_and_outputs_one_logit_per_task():
    torch.manual_seed(0)
    mmoe = MMoE(6, tasks=("watch", "like", "other"), n_experts=3, expert_hidden=(8, 4), tower_hidden=(5,))
    x = torch.randn(7, 6)
    gates = mmoe.gate_weights(x)
    for g in gates.values():
        assert g.shape == (7, 3)
        torch.testing.assert_close(g.sum(-1), torch.ones(7))
        assert (g > 0).all()
    assert not torch.allclose(gates["watch"], gates["like"])  # one gate per task
    out = mmoe(x)
    assert list(out) == ["watch", "like", "other"]
    assert all(v.shape == (7,) for v in out.values())


def test_mmoe_matches_a_reference_computation():
    torch.manual_seed(1)
    mmoe = MMoE(5, tasks=("watch", "like"), n_experts=2, expert_hidden=(6,), tower_hidden=(3,))
    x = torch.randn(4, 5)
    out = mmoe(x)
    with torch.no_grad():
        for t in ("watch", "like"):
            gate, tower = mmoe.gates[t], mmoe.towers[t].layers
            for b in range(4):
                experts = [torch.relu(e.layers[0](x[b])) for e in mmoe.experts]  # f_e(x), (6,)
                g = torch.softmax(gate(x[b]), dim=0)
                mixed = g[0] * experts[0] + g[1] * experts[1]
                logit = tower[2](torch.relu(tower[0](mixed)))
                torch.testing.assert_close(out[t][b], logit[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- MLP


def test_mlp_shapes_and_no_batch_norm_by_default():
    mlp = MLP(6, (8, 4), output_dim=1, dropout=0.1)
    assert mlp.out_dim == 1
    assert mlp(torch.randn(3, 6)).shape == (3, 1)
    assert mlp(torch.randn(3, 5, 6)).shape == (3, 5, 1)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in mlp.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in MLP(6, (8,), batch_norm=True).modules())
    assert isinstance(MLP(6, ()).layers, torch.nn.Sequential) and MLP(6, ()).out_dim == 6


def test_prelu_has_one_slope_per_unit_of_the_last_dimension():
    act = PReLU(3)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = -torch.ones(2, 4, 3)
    torch.testing.assert_close(act(x), -torch.tensor([0.1, 0.2, 0.3]).expand(2, 4, 3))
    assert torch.equal(act(-x), -x)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        MLP(3, (4,), activation="swishy")
