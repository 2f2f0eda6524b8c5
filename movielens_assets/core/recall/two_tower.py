"""Two-tower retrieval (PyTorch) with in-batch sampled softmax, logQ correction and accidental-hit masking.

User tower: user id embedding + MASKED mean of the embeddings of the user's last L items (sum / count of
real entries — identical whatever the padding length or batch composition) + (`pooling="mean_recency"`,
the default) a recency-weighted masked mean of the same embeddings, weight exp(a[age]) with one learnable
a per age (0 = the most recent item; ages counted on the mask, so equally padding-invariant) + profile
features (log activity, mean rating; standardised with training statistics) -> MLP -> L2 norm. The
recency pooling matters: sequences come in runs (consecutive ratings in one taste cluster), so the next
items follow the last few items much more than the mean of the last L.
Item tower: item id embedding + masked mean of genre embeddings (multi-hot) + year bucket + log
popularity + projected semantic embedding (when given) -> MLP -> L2 norm.

Training examples are the training interactions themselves: the positive is the interaction's item and
the user side is built from the user's history STRICTLY BEFORE it (items and profile features both
point-in-time), so an example never sees its own item or a later one. Loss: softmax over the batch's
items, logits = <u, v> / T - log q(item) (q = the item's share of training interactions: in-batch
negatives are drawn in proportion to frequency, the correction removes that bias), with accidental hits
(the same item as another row's positive, or another positive of the same user) masked out. Each example's
loss is weighted by n_u ** -0.5 (n_u = its user's number of training interactions; `user_weight_power`),
rescaled to mean 1: the metrics average over users, so heavy users should not dominate the gradient —
the weight depends on that count only, never on which items follow the example.

The defaults were chosen on synthetic-small (protocol last_n, Recall@20 / @100): mean_recency pooling,
n_u ** -0.5 weights, batch 512 and 3 epochs beat the former default (mean pooling, uniform weights, batch
1024, 2 epochs); the recency pooling learns to sharpen its prior (weights falling faster with age). Cosine lr
decay, lr 1e-2, batch 2048, 1,024 extra uniform negatives, position weights, and dropping the user id
embedding were each measured worse; semantic item embeddings make no measurable difference there. The
channel's current numbers: docs/EVALUATION.md, "Recall: every channel and the merged list" (with the
command that regenerates them).

Training cost: the id embedding tables (user, history item, item) have sparse gradients and are updated by
SparseAdam (`sparse_embeddings`), the rest by Adam: a step touches only its batch's rows. With dense Adam
over the whole tables CPU training slowed down as the catalogue grew; sparse updates keep most of the speed
at the same loss (throughput per size and the command: docs/BENCHMARKS.md, "Recall (`benchmarks/recall.py`)",
two-tower training throughput, `benchmarks/two_tower.py`).

Serving uses the user's whole training history (last L items), item vectors go into a faiss index
(`ann.py`), and seen items are excluded with the shared rule. The towers are module-level nn.Modules in
`towers.py` (`UserTower`, `ItemTower`, `TwoTower`); this module imports torch (and `towers`) inside
functions only.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.device import resolve_device
from movielens_assets.core.recall.ann import AnnConfig, AnnIndex, recommend_by_vectors
from movielens_assets.core.recall.base import BaseRecall, IdMap, Interactions

if TYPE_CHECKING:  # pragma: no cover - towers imports torch, which this module imports lazily
    from movielens_assets.core.recall.towers import TwoTower

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwoTowerConfig:
    dim: int = 64  # output (and embedding) dimension
    hidden: int = 128  # MLP hidden width
    history_len: int = 20  # L: most recent items pooled by the user tower
    n_year_buckets: int = 10  # quantile buckets of release years (+1 for unknown)
    temperature: float = 0.05
    logq_correction: bool = True
    mask_accidental_hits: bool = True
    epochs: int = 3
    # 512 rather than 1024: twice the steps per epoch at a lower cost per example (the [B, B] logits);
    # measured better AND faster on synthetic-small (2048 was worse)
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 0.0  # dense parameters only when sparse_embeddings (SparseAdam has none)
    # id embedding tables (user, history item, item) with SPARSE gradients, updated by SparseAdam: a step
    # touches only the rows in its batch. Dense Adam updates every row of every table at every step, which
    # made CPU training slow down with the catalogue (docs/BENCHMARKS.md, "Recall", two-tower training throughput)
    sparse_embeddings: bool = True
    seed: int = 0
    # user tower: "mean" (masked mean of the last L items) or "mean_recency" (that mean concatenated with a
    # recency-weighted masked mean: one learnable weight per age = rank from the most recent item)
    pooling: str = "mean_recency"
    # initial ratio between the weights of consecutive ages (mean_recency): a flat prior, close to the mean,
    # that training sharpens where order carries signal (0.8 measured the same on synthetic-small, but worse
    # on order-free data)
    recency_init: float = 0.9
    user_id_embedding: bool = True  # False: the user side is a function of the history (+ profile) only
    # per-example loss weight n_u ** -user_weight_power (n_u = the user's number of training interactions),
    # rescaled to mean 1: 0 = every interaction counts the same, 1 = every user counts the same (as in the
    # per-user metrics); 0.5 in between (heavy users' many examples no longer dominate the gradient)
    user_weight_power: float = 0.5
    position_weight_power: float = 0.0  # x ((p + 1) / n_u) ** power, p = the example's position (measured worse)
    # None: every epoch goes over all training interactions; N: each epoch over a fresh uniform sample of N
    # of them (bounds CPU training time at 32M ratings; the examples stay point-in-time)
    max_examples_per_epoch: int | None = None
    # torch intra-op threads during fit (None: leave torch's setting). 1 by default: on a shared 2-core box
    # (parallel Dagster steps, other jobs) 2 threads measured clearly SLOWER than 1 (synthetic-small;
    # no doc section holds this figure: time `two_tower_recall` with num_threads 1 and 2 to recheck)
    num_threads: int | None = 1
    encode_batch: int = 8192  # users/items per forward pass at inference
    ann: AnnConfig = field(default_factory=AnnConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TwoTowerConfig:
        d = dict(d)
        d["ann"] = AnnConfig(**d.get("ann", {}))
        # a checkpoint written before these fields existed: the architecture / training it was built with
        d.setdefault("pooling", "mean")
        d.setdefault("user_weight_power", 0.0)
        return cls(**d)


# ----------------------------------------------------------------------------------------------- features


def item_features_from_movies(
    id_map: IdMap, movie_ids: np.ndarray, years: np.ndarray | list, genres: list[list[str] | None],
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Side inputs aligned with the IdMap items, from the processed `movies` table columns.

    Returns (genre multi-hot uint8 [n_items, n_genres], years int64 [n_items] with 0 = unknown, genre
    vocabulary). The vocabulary is derived from the data (sorted); items missing from `movies` get no
    genre and year 0. A loop over movies (not ratings), so it is cheap even for the 87k-movie catalogue.
    """
    idx = id_map.item_index(np.asarray(movie_ids, dtype=np.int64))
    vocab = sorted({g for gs in genres if gs is not None for g in gs if g and g != "(no genres listed)"})
    pos = {g: j for j, g in enumerate(vocab)}
    multi_hot = np.zeros((id_map.n_items, len(vocab)), dtype=np.uint8)
    out_years = np.zeros(id_map.n_items, dtype=np.int64)
    yrs = np.asarray([0 if y is None or (isinstance(y, float) and math.isnan(y)) else int(y) for y in years])
    for row, (i, gs) in enumerate(zip(idx, genres, strict=True)):
        if i < 0:
            continue
        out_years[i] = yrs[row]
        for g in gs or ():
            if g in pos:
                multi_hot[i, pos[g]] = 1
    return multi_hot, out_years, vocab


def build_histories(
    indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, users: np.ndarray, length: int, pad: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Histories of the interactions at global positions `rows` (of users `users`): the `length` items
    immediately BEFORE each row within its user (never the row itself, never a later one).

    Returns (item ids [n, length] int64 padded with `pad`, mask [n, length] bool), oldest first.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[np.asarray(users, dtype=np.int64)]
    pos = rows[:, None] - length + np.arange(length)[None, :]  # rows-L .. rows-1
    mask = pos >= starts[:, None]
    hist = np.where(mask, items[np.clip(pos, 0, None)], pad).astype(np.int64)
    return hist, mask


def example_weights(indptr: np.ndarray, user_power: float = 0.0, position_power: float = 0.0) -> np.ndarray | None:
    """Loss weight of every training interaction (global row order), rescaled to mean 1; None when uniform.

    `n_u ** -user_power` (n_u = the user's number of training interactions: 1 gives every user the same
    total weight, as the per-user metrics do) times `((p + 1) / n_u) ** position_power` (p = the row's
    position in the user's time-ordered history: > 0 favours later examples, closer to serving, which
    predicts what follows the whole history). Only the user's count and the row's position are used.
    """
    if not user_power and not position_power:
        return None
    counts = np.diff(indptr).astype(np.float64)
    n_u = np.repeat(counts, counts.astype(np.int64))
    w = n_u ** -user_power
    if position_power:
        pos = np.arange(n_u.size, dtype=np.float64) - np.repeat(indptr[:-1], counts.astype(np.int64))
        w = w * ((pos + 1.0) / n_u) ** position_power
    return (w / w.mean()).astype(np.float32)


def _serving_rows(indptr: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The 'next' global position of each user: its history is then all of its training items."""
    return indptr[np.asarray(users, dtype=np.int64) + 1]


# -------------------------------------------------------------------------------------------------- model


def _build_model(config: TwoTowerConfig, n_users: int, n_items: int, n_genres: int, sem_dim: int) -> TwoTower:
    from movielens_assets.core.recall.towers import TwoTower

    return TwoTower(config, n_users, n_items, n_genres, sem_dim)


def _optimizer(model, cfg: TwoTowerConfig):
    """Adam on the dense parameters; SparseAdam (same lr and betas) on the embedding tables that produce sparse
    gradients (`cfg.sparse_embeddings`) — `core.nn.optim.DenseSparseOptimizer`."""
    import torch

    from movielens_assets.core.nn.optim import DenseSparseOptimizer, split_parameters

    dense, sparse = split_parameters(model)
    return DenseSparseOptimizer(
        torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay) if dense else None,
        torch.optim.SparseAdam(sparse, lr=cfg.lr) if sparse else None,
    )


def in_batch_logits(
    user_vecs, item_vecs, item_ids, log_q=None, temperature: float = 1.0, mask_accidental_hits: bool = True,
    user_ids=None,
):
    """Logits [B, B] of the in-batch sampled softmax: row i = user i, column j = row j's positive item.

    logits[i, j] = <u_i, v_j> / T - log q(item_j) (when `log_q`, the per-row log sampling probability, is
    given); accidental hits — column j's item equals row i's positive (j != i), or, when `user_ids` is
    given, column j is another positive of the same user — are set to -inf so that they are not used as
    negatives. The target of row i is column i.
    """
    import torch

    scaled = user_vecs / temperature  # [B, D]: cheaper than dividing the [B, B] logits
    if log_q is not None:
        logits = torch.addmm(-log_q.unsqueeze(0), scaled, item_vecs.T)  # fused <u, v> / T - log q
    else:
        logits = scaled @ item_vecs.T
    if mask_accidental_hits:
        hit = item_ids.unsqueeze(0) == item_ids.unsqueeze(1)
        if user_ids is not None:
            hit |= user_ids.unsqueeze(0) == user_ids.unsqueeze(1)
        hit.fill_diagonal_(False)
        logits = logits.masked_fill(hit, float("-inf"))
    return logits


def in_batch_softmax_loss(user_vecs, item_vecs, item_ids, log_q=None, temperature: float = 1.0,
                          mask_accidental_hits: bool = True, user_ids=None, weights=None):
    """Cross-entropy of `in_batch_logits` (target: the diagonal); `weights` [B]: per-row loss weights
    (weighted mean; None = the plain mean)."""
    import torch

    logits = in_batch_logits(user_vecs, item_vecs, item_ids, log_q, temperature, mask_accidental_hits, user_ids)
    target = torch.arange(logits.shape[0], device=logits.device)
    if weights is None:
        return torch.nn.functional.cross_entropy(logits, target)
    per_row = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return (per_row * weights).sum() / weights.sum()


# ------------------------------------------------------------------------------------------------ channel


class TwoTowerRecall(BaseRecall):
    """Two-tower recall channel. Side inputs are optional arrays aligned with the IdMap items:
    `item_genres` (multi-hot [n_items, n_genres]), `item_years` (int [n_items], 0 = unknown),
    `item_embeddings` (float32 [n_items, d]) with `item_embedding_mask` (bool [n_items], False = no
    embedding: that row is zeroed)."""

    name = "two_tower"
    _cum_ratings: np.ndarray  # cumulative ratings of the train rows, set on first use by `_profile_raw`

    def __init__(
        self,
        config: TwoTowerConfig | None = None,
        *,
        item_genres: np.ndarray | None = None,
        item_years: np.ndarray | None = None,
        item_embeddings: np.ndarray | None = None,
        item_embedding_mask: np.ndarray | None = None,
        device: str = "auto",
    ):
        self.config = config or TwoTowerConfig()
        self.device = device
        self.item_genres = None if item_genres is None else np.asarray(item_genres, dtype=np.float32)
        self.item_years = None if item_years is None else np.asarray(item_years, dtype=np.int64)
        emb = None if item_embeddings is None else np.array(item_embeddings, dtype=np.float32)
        if emb is not None and item_embedding_mask is not None:
            emb[~np.asarray(item_embedding_mask, dtype=bool)] = 0.0
        self.item_embeddings = emb
        self.model: TwoTower | None = None  # set by fit / load (`_build_model`)
        self.stats: dict = {}
        self.train: Interactions | None = None
        self.item_vectors_: np.ndarray | None = None
        self.index_: AnnIndex | None = None
        self.training_log_: dict = {}

    # ---- side inputs -> per-item tensors
    def _item_inputs(self, n_items: int) -> dict[str, np.ndarray]:
        genres = self.item_genres if self.item_genres is not None else np.zeros((n_items, 1), np.float32)
        years = self.item_years if self.item_years is not None else np.zeros(n_items, np.int64)
        for name, a in (("item_genres", genres), ("item_years", years), ("item_embeddings", self.item_embeddings)):
            if a is not None and a.shape[0] != n_items:
                raise ValueError(f"{name} has {a.shape[0]} rows, the IdMap has {n_items} items")
        edges = np.asarray(self.stats["year_edges"], dtype=np.float64)
        bucket = np.where(years > 0, 1 + np.searchsorted(edges, years, side="right"), 0)
        bucket = np.minimum(bucket, self.config.n_year_buckets)
        log_pop = (np.log1p(self.stats["item_counts"]) - self.stats["log_pop_mean"]) / self.stats["log_pop_std"]
        sem = self.item_embeddings if self.item_embeddings is not None else np.zeros((n_items, 0), np.float32)
        return {"genres": genres, "year_bucket": bucket.astype(np.int64), "log_pop": log_pop.astype(np.float32),
                "sem": sem}

    def _fit_stats(self, train: Interactions) -> None:
        n_items = train.n_items
        counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
        lp = np.log1p(counts)
        years = self.item_years if self.item_years is not None else np.zeros(n_items, np.int64)
        known = years[years > 0]
        nb = self.config.n_year_buckets
        edges = np.unique(np.quantile(known, np.arange(1, nb) / nb)) if known.size else np.zeros(0)
        # profile features as the user tower sees them in training (point-in-time, per example)
        act, mean_r = self._profile_raw(train, np.arange(train.items.size), self._row_users(train), None)
        self.stats = {
            "item_counts": counts.tolist(),
            "log_q": np.log(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)).tolist(),
            "log_pop_mean": float(lp.mean()), "log_pop_std": float(lp.std() or 1.0),
            "year_edges": edges.tolist(),
            "global_mean_rating": float(train.ratings.mean()) if train.ratings.size else 0.0,
            "act_mean": float(act.mean()) if act.size else 0.0, "act_std": float(act.std() or 1.0),
            "rating_mean": float(mean_r.mean()) if mean_r.size else 0.0, "rating_std": float(mean_r.std() or 1.0),
            "n_users": train.n_users, "n_items": n_items,
        }
        for key in ("item_counts", "log_q"):
            self.stats[key] = np.asarray(self.stats[key])

    @staticmethod
    def _row_users(train: Interactions) -> np.ndarray:
        return np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(train.indptr))

    def _profile_raw(self, train: Interactions, rows: np.ndarray, users: np.ndarray, global_mean: float | None):
        """Point-in-time (log1p count, mean rating) of the user's interactions before global position `rows`."""
        if not hasattr(self, "_cum_ratings") or self._cum_ratings.size != train.ratings.size + 1:
            self._cum_ratings = np.concatenate([[0.0], np.cumsum(train.ratings, dtype=np.float64)])
        starts = train.indptr[users]
        count = rows - starts
        total = self._cum_ratings[rows] - self._cum_ratings[starts]
        gm = float(train.ratings.mean()) if global_mean is None and train.ratings.size else (global_mean or 0.0)
        mean_r = np.where(count > 0, total / np.maximum(count, 1), gm)
        return np.log1p(count).astype(np.float64), mean_r.astype(np.float64)

    def _user_inputs(self, train: Interactions, rows: np.ndarray, users: np.ndarray):
        hist, mask = build_histories(train.indptr, train.items, rows, users, self.config.history_len, train.n_items)
        act, mean_r = self._profile_raw(train, rows, users, self.stats["global_mean_rating"])
        profile = np.stack([(act - self.stats["act_mean"]) / self.stats["act_std"],
                            (mean_r - self.stats["rating_mean"]) / self.stats["rating_std"]], axis=1)
        return hist, mask, profile.astype(np.float32)

    # ---- training
    def fit(self, train: Interactions) -> TwoTowerRecall:
        import torch

        cfg = self.config
        dev = torch.device(resolve_device(self.device))
        old_threads = torch.get_num_threads()
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        try:
            torch.manual_seed(cfg.seed)
            rng = np.random.default_rng(cfg.seed)
            self.train = train
            self._fit_stats(train)
            n_items = train.n_items
            inputs = self._item_inputs(n_items)
            sem_dim = inputs["sem"].shape[1]
            self.model = _build_model(cfg, train.n_users, n_items, inputs["genres"].shape[1], sem_dim).to(dev)
            item_t = {k: torch.as_tensor(v, device=dev) for k, v in inputs.items()}
            log_q = torch.as_tensor(self.stats["log_q"], dtype=torch.float32, device=dev)
            opt = _optimizer(self.model, cfg)
            row_users = self._row_users(train)
            n = train.items.size
            row_w = example_weights(train.indptr, cfg.user_weight_power, cfg.position_weight_power)
            losses: list[float] = []
            t0 = time.perf_counter()
            self.model.train()
            per_epoch = n if not cfg.max_examples_per_epoch else min(n, int(cfg.max_examples_per_epoch))
            next_log = t0 + 60.0
            for epoch in range(cfg.epochs):
                perm = rng.permutation(n)[:per_epoch]
                total, steps = 0.0, 0
                for s in range(0, per_epoch, cfg.batch_size):
                    if time.perf_counter() > next_log:  # progress of long epochs
                        log.info("two_tower epoch %d/%d: %d/%d examples (%.0f examples/s)", epoch + 1, cfg.epochs,
                                 s, per_epoch, (epoch * per_epoch + s) / (time.perf_counter() - t0))
                        next_log = time.perf_counter() + 60.0
                    rows = perm[s : s + cfg.batch_size]
                    if rows.size < 2:
                        continue
                    users = row_users[rows]
                    hist, mask, profile = self._user_inputs(train, rows, users)
                    items = torch.as_tensor(train.items[rows].astype(np.int64), device=dev)
                    users_t = torch.as_tensor(users, device=dev)
                    u = self.model.user_tower(users_t, torch.as_tensor(hist, device=dev),
                                              torch.as_tensor(mask, device=dev), torch.as_tensor(profile, device=dev))
                    v = self.model.item_tower(items, item_t["genres"][items], item_t["year_bucket"][items],
                                              item_t["log_pop"][items], item_t["sem"][items])
                    loss = in_batch_softmax_loss(
                        u, v, items, log_q[items] if cfg.logq_correction else None, cfg.temperature,
                        cfg.mask_accidental_hits, users_t,
                        weights=None if row_w is None else torch.as_tensor(row_w[rows], device=dev),
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach())
                    steps += 1
                losses.append(total / max(steps, 1))
                log.info("two_tower epoch %d/%d loss %.4f (%.1fs)", epoch + 1, cfg.epochs, losses[-1],
                         time.perf_counter() - t0)
            train_s = time.perf_counter() - t0
            self.model.eval()
            self.model.to("cpu")  # serving (and faiss) on the CPU
            self.item_vectors_ = self._encode_items()
            self.index_ = AnnIndex.build(self.item_vectors_, cfg.ann)
            self.training_log_ = {
                "loss_per_epoch": losses, "epochs": cfg.epochs, "examples": int(n),
                "examples_per_epoch": int(per_epoch), "train_seconds": round(train_s, 3),
                "examples_per_s": round(cfg.epochs * per_epoch / max(train_s, 1e-9), 1),
                "index_seconds": round(time.perf_counter() - t0 - train_s, 3), "device": str(dev),
                "index_kind": self.index_.kind, "sparse_embeddings": cfg.sparse_embeddings,
            }
        finally:
            if cfg.num_threads:
                torch.set_num_threads(old_threads)
        return self

    # ---- inference
    def _encode_items(self) -> np.ndarray:
        import torch

        if self.model is None:  # set by fit / load before they encode the items
            raise RuntimeError("TwoTowerRecall is not fitted")
        n_items = self.stats["n_items"]
        inputs = {k: torch.as_tensor(v) for k, v in self._item_inputs(n_items).items()}
        out = []
        with torch.no_grad():
            for s in range(0, n_items, self.config.encode_batch):
                items = torch.arange(s, min(s + self.config.encode_batch, n_items))
                out.append(self.model.item_tower(items, inputs["genres"][items], inputs["year_bucket"][items],
                                                 inputs["log_pop"][items], inputs["sem"][items]).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.config.dim), np.float32)

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """L2-normalised user vectors from each user's whole training history (float32 [n, dim])."""
        import torch

        if self.model is None or self.train is None:  # set together by fit / load
            raise RuntimeError("TwoTowerRecall is not fitted")
        users = np.asarray(users, dtype=np.int64)
        out = np.zeros((users.size, self.config.dim), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, users.size, self.config.encode_batch):
                u = users[s : s + self.config.encode_batch]
                hist, mask, profile = self._user_inputs(self.train, _serving_rows(self.train.indptr, u), u)
                out[s : s + u.size] = self.model.user_tower(
                    torch.as_tensor(u), torch.as_tensor(hist), torch.as_tensor(mask), torch.as_tensor(profile)
                ).numpy()
        return out

    def item_vectors(self) -> np.ndarray:
        if self.item_vectors_ is None:
            raise RuntimeError("TwoTowerRecall is not fitted")
        return self.item_vectors_

    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None or self.index_ is None or self.item_vectors_ is None or self.train is None:
            raise RuntimeError("TwoTowerRecall is not fitted")  # (fit / load set all four)
        users = np.asarray(users, dtype=np.int64)
        return recommend_by_vectors(self.index_, self.item_vectors_, self.user_vectors(users), users, self.train, k)

    # ---- persistence
    def save(self, directory: Path) -> None:
        """`checkpoint.pt` (state dict + config + normalisation stats), `config.json`, `item_inputs.npz`,
        `item_vectors.npy`, `index/` (faiss) — written atomically as one directory."""
        import torch

        from movielens_assets.core.data.atomic import atomic_path

        if self.model is None or self.index_ is None or self.item_vectors_ is None:  # set together
            raise RuntimeError("TwoTowerRecall is not fitted")
        stats = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.stats.items()}
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            torch.save({"state_dict": self.model.state_dict(), "config": self.config.to_dict(), "stats": stats,
                        "training_log": self.training_log_}, tmp / "checkpoint.pt")
            (tmp / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            side: dict[str, np.ndarray] = {}
            if self.item_genres is not None:
                side["item_genres"] = self.item_genres
            if self.item_years is not None:
                side["item_years"] = self.item_years
            if self.item_embeddings is not None:
                side["item_embeddings"] = self.item_embeddings
            # numpy's savez stub: mypy cannot tell that a dict of arrays has no key "allow_pickle" (a bool)
            np.savez(tmp / "item_inputs.npz", **side)  # type: ignore[arg-type]
            np.save(tmp / "item_vectors.npy", self.item_vectors_)
            self.index_.save(tmp / "index")

    @classmethod
    def load(cls, directory: Path, train: Interactions, device: str = "cpu") -> TwoTowerRecall:
        import torch

        directory = Path(directory)
        ckpt = torch.load(directory / "checkpoint.pt", map_location="cpu", weights_only=True)
        side = dict(np.load(directory / "item_inputs.npz"))
        self = cls(TwoTowerConfig.from_dict(ckpt["config"]), device=device, **side)
        self.stats = dict(ckpt["stats"])
        for key in ("item_counts", "log_q"):
            self.stats[key] = np.asarray(self.stats[key])
        if train.n_users != self.stats["n_users"] or train.n_items != self.stats["n_items"]:
            raise ValueError("train does not match the saved model's id space")
        self.train = train
        sem_dim = self.item_embeddings.shape[1] if self.item_embeddings is not None else 0
        n_genres = self.item_genres.shape[1] if self.item_genres is not None else 0
        self.model = _build_model(self.config, train.n_users, train.n_items, n_genres, sem_dim)
        self.model.load_state_dict(ckpt["state_dict"])
        self.model.eval()
        self.training_log_ = ckpt.get("training_log", {})
        self.item_vectors_ = np.load(directory / "item_vectors.npy")
        self.index_ = AnnIndex.load(directory / "index")
        return self
