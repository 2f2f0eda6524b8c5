"""The UnifiedRanker: DIN target attention over the history + DCN-V2 cross network + MMoE (watch, like).

Model only: the configuration, the composed `nn.Module`, the loss and the optimizers. Reading the sample
shards and the training loop live elsewhere (samples / trainer modules; docs/RANKING.md).

Input contract (one batch = a dict of tensors on the model's device; B = batch size, L = history length,
`config.history_len` = 50 by default, though any L works):

| key | shape, dtype | content |
|---|---|---|
| `user` | (B,) int64 | user vocabulary index; 0 = unknown / out of vocabulary |
| `item` | (B,) int64 | candidate item vocabulary index; 0 = unknown |
| `hist_items` | (B, L) int64 | items before the cut-off, oldest first, right-aligned (padding left); 0 = pad |
| `hist_mask` | (B, L) bool | True = real entry (the mask, not the id 0, decides what is padding) |
| `hist_ratings` | (B, L) float32 | stars 0.5 .. 5 of the history entries (0 on padding) |
| `hist_log_gap` | (B, L) float32 | log1p(days between the history event and the cut-off) (0 on padding) |
| `hist_group` | (B,) int64, optional | grouped histories (below): row b's history is row `hist_group[b]` |
| `dense` | (B, F) float32 | already-normalised dense features, F = `config.dense_features` (may be 0 or absent) |
| `watch`, `like` | (B,) float32 | labels, read by `ranker_loss` only |

With `hist_group` (grouped histories) the four `hist_*` arrays hold G rows, one per distinct history (e.g.
one per user when scoring a user's candidates), and row b's history is row `hist_group[b]`.

`hist_items` hold the user's items strictly before the sample's cut-off, oldest first, right-aligned: the
most recent at position L - 1, padding on the left.

The model has no positional parameter, so the alignment is a convention of the loader, not a requirement:
left-aligned histories give the same output (a test moves the padding around). Order reaches the model only
through `hist_log_gap`.

Item side information is not in the batch: `ItemEncoder` holds per-item tables (indexed by the item
vocabulary; row 0 = unknown item) as buffers — genres (n_items, G) and year bucket (n_items,), and
optionally directors (n_items,) or (n_items, K), top-billed cast (n_items, C) and semantic vectors
(n_items, d_sem) with a bool mask. The buffers are persistent: a checkpoint carries the exact tables the
model was trained with (the lesson of the "MPS mean": an item's vector must not change between training
and serving).

Item representation (ONE method, `ItemEncoder.forward`, for the candidate and for every history entry, so
DIN compares like with like): the SUM of D-dimensional parts — id embedding + masked-mean genre embedding +
masked-mean director embedding + masked-mean cast embedding + year-bucket embedding + projected semantic
vector (zero where the semantic mask is False). A sum rather than a concatenation keeps every history
position D wide: DIN's cost is linear in that width. History keys add a learned projection of the side
inputs (rating, log gap) to e(item): k_l = e(i_l) + W_side [(r_l - 3) / 2, gap_l / 5] + b_side (padding
positions get garbage keys that the mask removes).

Forward:  x_0 = [u, e(candidate), DIN(e(candidate), keys, mask) or masked mean, dense]   (B, 3D + F)
          x   = CrossNet(x_0) (or x_0 when `use_cross=False`: "MLP only")
          {task: logit} = MMoE(x)                                                      each (B,)

Cost. Training throughput is measured by `benchmarks/ranker_model.py` (its numbers belong in docs/RANKING.md,
not here). What it showed, and the design choices it drove — on CPU the step is bound by memory traffic
(B * L history positions, random rows of the id tables), not by multiply-adds:
- scoring (no gradients) reads every item representation from one table (`item_table`: all items, once per
  set of weights), and with `hist_group` computes each distinct history's keys once (a user's ~200
  candidates share one history);
- item representations are computed once per DISTINCT item of the batch (candidate + history ids
  deduplicated, `dedup_items`) and gathered back: identical values, far fewer rows on popularity-skewed
  batches (and the 10 samples of one positive share a history);
- the small-vocabulary parts (genres, year bucket) and the semantic vector are ONE dense per-item row
  [genre weights 1/count | year one-hot | semantic] times ONE stacked (V, D) matrix [E_genre; E_year; W_sem^T]:
  the same masked mean / lookup / projection as separate tables, but a matrix product whose backward is a
  GEMM (the CPU backward of an embedding lookup pays a serial add per index);
- the semantic vectors are reduced once, at construction, to their top `semantic_rank` principal directions
  (uncentred: the basis P of the best rank-r approximation S ~ S P P^T), so the learned projection is
  Linear(d_sem, D) restricted to W = W_r P^T: gathering and projecting all 384 floats of every distinct item
  at every step cost more than the rest of the model; `semantic_rank=None` keeps the full Linear(d_sem, D);
- the id tables that grow with the data (users, items, directors, cast) have sparse gradients and are
  trained by SparseAdam (`sparse_embeddings`; `RowSparseAdam`, the same update computed row by row): a step
  touches only its batch's rows;
- widths: D = 16, one attention hidden layer of 16, experts (64, 32): the per-position attention tensors
  (B, L, H) and the experts' multiply-adds are the two costs that grow with these widths.
This module imports torch at import time; Dagster-side code imports it inside functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from movielens_assets.core.nn.optim import DenseSparseOptimizer, sparse_parameters, split_parameters  # noqa: F401 - sparse_parameters re-exported
from movielens_assets.core.ranking.config import TASKS, UnifiedRankerConfig  # noqa: F401 - re-exported
from movielens_assets.core.ranking.layers.cross import CrossNet, LowRankCrossNet
from movielens_assets.core.ranking.layers.din import DINAttention, MeanPooling
from movielens_assets.core.ranking.layers.mmoe import MMoE


def _as_tensor(a, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(dtype).contiguous()


def _check_ids(name: str, table: torch.Tensor, n_items: int, vocab: int) -> None:
    if table.shape[0] != n_items:
        raise ValueError(f"{name} has {table.shape[0]} rows, the config has n_items={n_items}")
    if table.numel() and (int(table.min()) < 0 or int(table.max()) >= vocab):
        raise ValueError(f"{name} holds ids outside [0, {vocab})")


def semantic_basis(semantic: torch.Tensor, rank: int) -> torch.Tensor:
    """(d_sem, rank) orthonormal basis of the best rank-`rank` approximation of the rows (uncentred PCA:
    top eigenvectors of S^T S, computed in float64); each column's sign is fixed so that its largest-magnitude
    entry is positive (the same basis on every machine)."""
    s = semantic.to(torch.float64)
    eigval, eigvec = torch.linalg.eigh(s.t() @ s)  # ascending
    basis = eigvec[:, torch.argsort(eigval, descending=True)[:rank]]  # (d_sem, rank)
    pivot = basis.abs().argmax(dim=0)
    signs = torch.sign(basis[pivot, torch.arange(basis.shape[1])])
    return (basis * torch.where(signs == 0, torch.ones_like(signs), signs)).to(torch.float32)


class ItemEncoder(nn.Module):
    """e(i): the item representation, the SUM of D-wide parts (see the module docstring).

    e(i) = E_item[i] + mean_{g in genres(i)} E_genre[g] + E_year[year(i)] + W_r (P^T s_i) * m_i
           + mean_{d in directors(i)} E_dir[d] + mean_{c in cast(i)} E_cast[c]

    Padding ids (0) never count in a mean; an item without genres / directors / cast gets 0 for that part.
    Unknown item 0 and unknown user 0 have a fixed zero id embedding (padding_idx) and keep their side parts.

    forward(items (...) int64) -> (..., D).
    """

    # buffers registered in __init__ / _register_bag (the bag ones only when that part exists)
    item_side: torch.Tensor
    item_directors: torch.Tensor
    item_directors_weights: torch.Tensor
    item_cast: torch.Tensor
    item_cast_weights: torch.Tensor

    def __init__(
        self,
        config: UnifiedRankerConfig,
        item_genres,
        item_year_bucket,
        item_directors=None,
        item_cast=None,
        item_semantic=None,
        item_semantic_mask=None,
    ) -> None:
        super().__init__()
        c = config
        D, n = c.embed_dim, c.n_items
        sparse = c.sparse_embeddings
        genres = _as_tensor(item_genres, torch.int64)
        years = _as_tensor(item_year_bucket, torch.int64)
        _check_ids("item_genres", genres, n, c.n_genres)
        _check_ids("item_year_bucket", years, n, c.n_year_buckets)
        if (item_directors is None) != (c.n_directors == 0) or (item_cast is None) != (c.n_cast == 0):
            raise ValueError("item_directors / item_cast must be given exactly when n_directors / n_cast > 0")
        if (item_semantic is None) != (c.semantic_dim == 0):
            raise ValueError("item_semantic must be given exactly when semantic_dim > 0")

        self.embed_dim = D
        self.item_emb = nn.Embedding(n, D, padding_idx=0, sparse=sparse)
        # small vocabularies and the semantic vector: one dense row per item times one stacked matrix
        genre_w = torch.zeros(n, c.n_genres)
        genre_w.scatter_add_(1, genres, torch.ones(genres.shape))  # counts per genre id (as a padded-list mean)
        genre_w[:, 0] = 0.0  # padding
        genre_w = genre_w / genre_w.sum(dim=1, keepdim=True).clamp(min=1.0)  # masked mean weights: 1 / count
        year_onehot = torch.nn.functional.one_hot(years, c.n_year_buckets).to(torch.float32)
        parts = [genre_w, year_onehot]
        self.genre_table = nn.Parameter(torch.randn(c.n_genres, D) * 0.05)  # row 0 (padding) unused
        self.year_table = nn.Parameter(torch.randn(c.n_year_buckets, D) * 0.05)  # row 0 = unknown year
        self.semantic_proj: nn.Linear | None = None
        self.semantic_basis: torch.Tensor | None = None
        if item_semantic is not None:
            sem = _as_tensor(item_semantic, torch.float32)
            if sem.shape != (n, c.semantic_dim):
                raise ValueError(f"item_semantic has shape {tuple(sem.shape)}, expected ({n}, {c.semantic_dim})")
            if item_semantic_mask is not None:
                sem = sem * _as_tensor(item_semantic_mask, torch.bool).unsqueeze(1).to(torch.float32)
            sem = torch.nan_to_num(sem)
            if c.semantic_rank is not None and c.semantic_rank < c.semantic_dim:
                basis = semantic_basis(sem, c.semantic_rank)  # (d_sem, r)
                sem = sem @ basis  # (n_items, r): masked-out rows stay exactly 0
                del self.semantic_basis
                self.register_buffer("semantic_basis", basis)
            # no bias: an item without a semantic vector gets exactly 0 from this part
            self.semantic_proj = nn.Linear(sem.shape[1], D, bias=False)
            parts.append(sem)
        self.register_buffer("item_side", torch.cat(parts, dim=1).contiguous())  # (n_items, V)

        # directors / cast: masked means as weighted sums (weight 1 / count on real ids, 0 on padding): on CPU the
        # EmbeddingBag "sum + per_sample_weights" kernel is much faster than "mean + padding_idx"
        self.director_emb = self.cast_emb = None
        if item_directors is not None:
            self.director_emb = nn.EmbeddingBag(c.n_directors, D, mode="sum", sparse=sparse)
            self._register_bag("directors", item_directors, n, c.n_directors)
        if item_cast is not None:
            self.cast_emb = nn.EmbeddingBag(c.n_cast, D, mode="sum", sparse=sparse)
            self._register_bag("cast", item_cast, n, c.n_cast)
        for emb in (self.item_emb, self.director_emb, self.cast_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.05)
                with torch.no_grad():
                    emb.weight[0].zero_()

    def _register_bag(self, name: str, table, n_items: int, vocab: int) -> None:
        ids = _as_tensor(table, torch.int64)
        ids = ids.unsqueeze(1) if ids.dim() == 1 else ids  # (n_items, K)
        _check_ids(f"item_{name}", ids, n_items, vocab)
        real = (ids != 0).to(torch.float32)
        self.register_buffer(f"item_{name}", ids)  # (n_items, K), 0 = padding
        self.register_buffer(f"item_{name}_weights", real / real.sum(dim=1, keepdim=True).clamp(min=1.0))

    def side_matrix(self) -> torch.Tensor:
        """The stacked (V, D) matrix [E_genre; E_year; W_sem^T] matching the columns of `item_side`."""
        mats: list[torch.Tensor] = [self.genre_table, self.year_table]
        if self.semantic_proj is not None:
            mats.append(self.semantic_proj.weight.t())
        return torch.cat(mats, dim=0)  # (V, D)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        flat = items.reshape(-1)  # (N,)
        side = self.item_side.index_select(0, flat)  # (N, V)
        e = torch.addmm(self.item_emb(flat), side, self.side_matrix())  # (N, D) = id + genres + year + semantic
        if self.director_emb is not None:
            e = e + self.director_emb(self.item_directors.index_select(0, flat),
                                      per_sample_weights=self.item_directors_weights.index_select(0, flat))  # (N, D)
        if self.cast_emb is not None:
            e = e + self.cast_emb(self.item_cast.index_select(0, flat),
                                  per_sample_weights=self.item_cast_weights.index_select(0, flat))  # (N, D)
        return e.reshape(items.shape + (self.embed_dim,))  # (..., D)


class UnifiedRanker(nn.Module):
    """DIN + DCN-V2 + MMoE ranker over the batch contract of the module docstring.

    forward(batch) -> {task: logits (B,)} for `config.tasks`; `features(batch)` returns the intermediate
    tensors (user, candidate, history, keys, pooled, x0) for inspection and tests.
    """

    def __init__(
        self,
        config: UnifiedRankerConfig,
        item_genres,
        item_year_bucket,
        item_directors=None,
        item_cast=None,
        item_semantic=None,
        item_semantic_mask=None,
    ) -> None:
        super().__init__()
        self.config = c = config
        D = c.embed_dim
        self.items = ItemEncoder(c, item_genres, item_year_bucket, item_directors, item_cast, item_semantic,
                                 item_semantic_mask)
        self.user_emb = nn.Embedding(c.n_users, D, padding_idx=0, sparse=c.sparse_embeddings)
        nn.init.normal_(self.user_emb.weight, std=0.05)
        with torch.no_grad():
            self.user_emb.weight[0].zero_()
        self.hist_side = nn.Linear(2, D)  # (rating, log gap) -> added to the history keys
        self.pooling = (DINAttention(D, c.attention_hidden, c.attention_activation) if c.use_din
                        else MeanPooling(D))
        d0 = 3 * D + c.dense_features
        if not c.use_cross or c.cross_layers == 0:
            self.cross: nn.Module = nn.Identity()
        elif c.cross_rank is None:
            self.cross = CrossNet(d0, c.cross_layers)
        else:
            self.cross = LowRankCrossNet(d0, c.cross_layers, c.cross_rank)
        self.mmoe = MMoE(d0, c.tasks, c.n_experts, c.expert_hidden, c.tower_hidden, c.activation, c.dropout)
        self.input_dim = d0
        self._item_table_cache: tuple[tuple, torch.Tensor] | None = None

    def item_representation(self, items: torch.Tensor) -> torch.Tensor:
        """e(i) for any shape of item ids: (...) -> (..., D). The only item encoder of the model."""
        return self.items(items)

    def item_table(self) -> torch.Tensor:
        """e(i) of EVERY item of the vocabulary, (n_items, D), for scoring without gradients: computed once and
        kept while the item encoder's parameters and buffers are unchanged (keyed by their version counters,
        which optimizer steps and `load_state_dict` bump), so the validation passes of training see fresh
        values. Call it under `torch.no_grad()` / `inference_mode()` only."""
        tensors = [*self.items.parameters(), *self.items.buffers()]
        key = tuple((t.data_ptr(), t._version, t.device) for t in tensors)
        cached = self._item_table_cache
        if cached is None or cached[0] != key:
            table = self.items(torch.arange(self.config.n_items, device=tensors[0].device))  # (n_items, D)
            cached = self._item_table_cache = (key, table)
        return cached[1]

    def _candidate_and_history(self, item: torch.Tensor, hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_grad_enabled():  # scoring: one lookup in the table of every item (no unique, no encoder)
            table = self.item_table()
            return table.index_select(0, item), table.index_select(0, hist.reshape(-1)).reshape(hist.shape + (-1,))
        ids = torch.cat([item.unsqueeze(1), hist], dim=1)  # (B, 1 + L)
        if self.config.dedup_items:
            uniq, inverse = torch.unique(ids, return_inverse=True)  # (U,), (B, 1 + L)
            reps = self.items(uniq)  # (U, D)
            # index_select (backward: index_add_), not F.embedding (its CPU backward is several times slower) nor
            # slices of one (B, 1 + L, D) gather (their backward zero-fills and copies the whole tensor twice)
            cand = reps.index_select(0, inverse[:, 0])  # (B, D)
            hist = reps.index_select(0, inverse[:, 1:].reshape(-1)).reshape(hist.shape + (-1,))  # (B, L, D)
            return cand, hist
        return self.items(item), self.items(hist)  # (B, D), (B, L, D)

    def features(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        user = self.user_emb(batch["user"])  # (B, D)
        cand, hist = self._candidate_and_history(batch["item"], batch["hist_items"])  # (B, D), (B|G, L, D)
        mask = batch["hist_mask"]  # (B|G, L) bool
        ratings = batch["hist_ratings"]
        gap = batch["hist_log_gap"]
        side_in = torch.stack([(ratings - 3.0) / 2.0, gap / 5.0, torch.ones_like(ratings)], dim=-1)  # (B, L, 3)
        # keys = hist + W_side [r, gap] + b_side as ONE batched product with the bias as a third input: faster
        # on CPU than nn.Linear(2, D) + add (the weight gradient of a K = 2 matmul over B * L rows is a slow
        # skinny GEMM, and a separate bias costs one more (B, L, D) pass each way)
        w_side = torch.cat([self.hist_side.weight.t(), self.hist_side.bias.unsqueeze(0)])  # (3, D)
        keys = torch.baddbmm(hist, side_in, w_side.unsqueeze(0).expand(side_in.shape[0], -1, -1))  # (B|G, L, D)
        group = batch.get("hist_group")
        if group is None:
            pooled = self.pooling(cand, keys, mask)  # (B, D)
        else:  # grouped histories: (G, L) rows, row b's history is row group[b]; "history" / "keys" stay (G, L, D)
            pooled = self.pooling.pool_grouped(cand, keys, mask, group)  # (B, D)
        parts = [user, cand, pooled]
        if self.config.dense_features:
            parts.append(batch["dense"])  # (B, F)
        x0 = torch.cat(parts, dim=1)  # (B, 3D + F)
        return {"user": user, "candidate": cand, "history": hist, "keys": keys, "pooled": pooled, "x0": x0}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.cross(self.features(batch)["x0"])  # (B, 3D + F)
        return self.mmoe(x)  # {task: (B,)}


def ranker_loss(
    logits: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    task_weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """sum_t w_t * mean_b BCEWithLogits(logits_t[b], batch[t][b]) over the tasks in `logits`.

    `task_weights` (e.g. `config.weights_by_task`): missing tasks weigh 1. Returns (total, {task: its
    unweighted mean loss}); the per-task tensors are still attached to the graph (detach them to log).
    """
    weights = task_weights or {}
    parts = {t: nn.functional.binary_cross_entropy_with_logits(z, batch[t].to(z.dtype)) for t, z in logits.items()}
    total = sum(float(weights.get(t, 1.0)) * loss for t, loss in parts.items())
    assert isinstance(total, torch.Tensor), "logits holds at least one task"
    return total, parts


RankerOptimizers = DenseSparseOptimizer
"""The ranker's optimizers: `build_optimizers` (the name the trainer and the benchmarks use)."""


class RowSparseAdam(torch.optim.SparseAdam):
    """torch.optim.SparseAdam's update (lazy Adam), computed row by row: same algorithm, same state layout.

    For the rows r present in a sparse gradient (duplicate entries summed), with the table's step count t:
        m_r <- m_r + (1 - b1) (g_r - m_r);   v_r <- v_r + (1 - b2) (g_r^2 - v_r)
        w_r <- w_r - lr sqrt(1 - b2^t) / (1 - b1^t) * m_r / (sqrt(v_r) + eps)
    Rows absent from the gradient are untouched. torch's implementation builds three sparse tensors and two
    `sparse_mask`s per table and step; with the ranker's four id tables at batch 1024 that took longer than
    the forward and backward together (`benchmarks/ranker_model.py`). On CPU this one runs a compiled loop
    (numba): gradient entries are summed into a scratch row (random access), then the touched rows are
    updated in ascending order (near-sequential access), several times faster; on other devices the same
    update as dense (U, D) row blocks (`index_select` / `index_copy_`). A test checks both against
    torch.optim.SparseAdam step by step; `state_dict`s are interchangeable with SparseAdam's.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, maximize=maximize)
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per CPU table: (row sums, touched flags)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = float(group["lr"]), group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if not grad.is_sparse:
                    raise RuntimeError("RowSparseAdam does not support dense gradients, use Adam instead")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                if grad._nnz() == 0:
                    continue
                t = state["step"]
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                sign = -1.0 if group.get("maximize", False) else 1.0
                if _use_kernel(p, state):
                    self._step_cpu(p, grad, state, beta1, beta2, eps, step_size, sign)
                else:
                    _step_rows(p, grad, state, beta1, beta2, eps, step_size, sign)
        return loss

    def _step_cpu(self, p, grad, state, beta1, beta2, eps, step_size, sign) -> None:
        n = p.shape[0]
        scratch = self._scratch.get(id(p))
        if scratch is None or scratch[0].shape != tuple(p.shape):
            scratch = (np.zeros(tuple(p.shape), np.float32), np.zeros(n, np.bool_))
            self._scratch[id(p)] = scratch
        idx = grad._indices()[0].contiguous().numpy()
        vals = grad._values().contiguous().numpy().reshape(idx.shape[0], -1)
        _row_adam_kernel()(p.detach().numpy().reshape(n, -1), state["exp_avg"].numpy().reshape(n, -1),
                           state["exp_avg_sq"].numpy().reshape(n, -1), idx, vals, scratch[0].reshape(n, -1),
                           scratch[1], beta1, beta2, eps, step_size, sign)
        torch.autograd.graph.increment_version(p)  # written through numpy: tell autograd, as in-place ops do


def _use_kernel(p: torch.Tensor, state: dict) -> bool:
    return (p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
            and state["exp_avg"].is_contiguous() and state["exp_avg_sq"].is_contiguous())


def _step_rows(p, grad, state, beta1, beta2, eps, step_size, sign) -> None:
    """The update on dense row blocks (any device): the same arithmetic as the kernel and as SparseAdam."""
    rows, values = _unique_rows(grad)  # (U,), (U, D)
    if sign < 0:
        values = -values
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    old_m = exp_avg.index_select(0, rows)  # (U, D)
    old_v = exp_avg_sq.index_select(0, rows)  # (U, D)
    m = values.sub(old_m).mul_(1 - beta1).add_(old_m)
    v = values.pow(2).sub_(old_v).mul_(1 - beta2).add_(old_v)
    exp_avg.index_copy_(0, rows, m)
    exp_avg_sq.index_copy_(0, rows, v)
    p.index_add_(0, rows, m.div_(v.sqrt_().add_(eps)).mul_(-step_size))


def _unique_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, values) of a sparse (n, D) gradient with duplicate rows summed; rows in ascending order."""
    if grad.is_coalesced():
        return grad._indices()[0], grad._values()
    idx, vals = grad._indices()[0], grad._values()
    rows, inverse = torch.unique(idx, return_inverse=True)  # (U,), (nnz,)
    return rows, torch.zeros((rows.numel(),) + vals.shape[1:], dtype=vals.dtype, device=vals.device).index_add_(
        0, inverse, vals)


def _row_adam(param, exp_avg, exp_avg_sq, idx, vals, row_sum, touched, beta1, beta2, eps, step_size, sign):
    """Compiled by `_row_adam_kernel`. param / exp_avg / exp_avg_sq / row_sum: (n, D) float32 (row_sum all 0
    and touched all False on entry and on exit); idx (nnz,) int64, vals (nnz, D) float32: the sparse gradient."""
    nnz, dim = vals.shape
    for i in range(nnz):  # sum duplicate entries (random access)
        r = idx[i]
        touched[r] = True
        for d in range(dim):
            row_sum[r, d] += vals[i, d]
    c1 = np.float32(1.0 - beta1)
    c2 = np.float32(1.0 - beta2)
    e = np.float32(eps)
    s = np.float32(step_size)
    sg = np.float32(sign)
    for r in range(param.shape[0]):  # the touched rows in ascending order (near-sequential access)
        if not touched[r]:
            continue
        touched[r] = False
        for d in range(dim):
            g = sg * row_sum[r, d]
            row_sum[r, d] = 0.0
            m = exp_avg[r, d]
            m = (g - m) * c1 + m
            v = exp_avg_sq[r, d]
            v = (g * g - v) * c2 + v
            exp_avg[r, d] = m
            exp_avg_sq[r, d] = v
            param[r, d] -= s * (m / (np.sqrt(v) + e))


_ROW_ADAM = None


def _row_adam_kernel():
    """`_row_adam` compiled by numba on first use (`cache=True`: later processes load the machine code)."""
    global _ROW_ADAM
    if _ROW_ADAM is None:
        import numba

        _ROW_ADAM = numba.njit(cache=True, nogil=True)(_row_adam)
    return _ROW_ADAM


def build_optimizers(model: nn.Module, config: UnifiedRankerConfig) -> RankerOptimizers:
    """SparseAdam (`RowSparseAdam`, the same update) on the sparse-gradient tables, Adam / AdamW on everything
    else: every trainable parameter in exactly one optimizer."""
    dense, sparse = split_parameters(model)
    dense_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel for all dense tensors (faster than the per-tensor loop on CPU, for many small tensors)
    fused = bool(dense) and all(p.device.type in ("cpu", "cuda") for p in dense)
    return RankerOptimizers(
        dense_cls(dense, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None) if dense else None,
        RowSparseAdam(sparse, lr=config.sparse_lr or config.lr) if sparse else None,
    )
