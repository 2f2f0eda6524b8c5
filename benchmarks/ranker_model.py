"""UnifiedRanker training throughput, model only: forward + backward + optimizer step on random batches.

    .venv/bin/python benchmarks/ranker_model.py                       # defaults below, 1 and 2 threads
    .venv/bin/python benchmarks/ranker_model.py --threads 1 --batch-sizes 1024 --variants full --profile

ML-32M-sized id spaces (200,000 users, 87,585 items: the sparse tables matter), F = 45 dense features,
G = 4 genre slots (20 genres), 2 director slots (25,000 directors), C = 3 cast slots (100,000 actors), 20
year buckets, 384-d semantic vectors (90% present), L = 50 full histories (the worst case: padding costs the
same as real entries). Item ids of candidates and histories are drawn `--items uniform` (the worst case for
the per-batch deduplication: ~39k distinct of 52k ids at batch 1024) or `zipf` (popularity ~ 1 / rank, closer
to MovieLens). Batches are generated once and cycled, so only the model is timed. Variants: the default
config (`full`) and the ablations `no_din`, `no_cross`, `single_task`. Prints samples/s per (threads, batch,
variant) — wall clock, and per second of this process's CPU time (with 1 thread: close to the rate on an
otherwise idle core; the box is shared) — with the CPU time of each phase of a step, and the parameter
counts; `--profile` prints the top torch.profiler operators of one setting.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_USERS, N_ITEMS, F, G, N_GENRES, N_YEARS = 200_000, 87_585, 45, 4, 20, 20
N_DIRECTORS, K_DIRECTORS, N_CAST, C, D_SEM, L = 25_000, 2, 100_000, 3, 384, 50
VARIANTS = {
    "full": {},
    "no_din": {"use_din": False},
    "no_cross": {"use_cross": False},
    "single_task": {"tasks": ("watch",)},
}


def item_tables(rng: np.random.Generator) -> dict[str, np.ndarray]:
    genres = rng.integers(1, N_GENRES, (N_ITEMS, G))
    genres[rng.random((N_ITEMS, G)) < np.array([0.0, 0.3, 0.6, 0.8])] = 0  # 1..4 genres per movie
    directors = rng.integers(1, N_DIRECTORS, (N_ITEMS, K_DIRECTORS))
    directors[:, 1][rng.random(N_ITEMS) < 0.9] = 0
    cast = rng.integers(1, N_CAST, (N_ITEMS, C))
    sem = rng.standard_normal((N_ITEMS, D_SEM)).astype(np.float32)
    sem /= np.linalg.norm(sem, axis=1, keepdims=True)
    for t in (genres, directors, cast):
        t[0] = 0
    return {"item_genres": genres, "item_year_bucket": rng.integers(0, N_YEARS, N_ITEMS),
            "item_directors": directors, "item_cast": cast, "item_semantic": sem,
            "item_semantic_mask": rng.random(N_ITEMS) < 0.9}


def batches(rng: np.random.Generator, batch: int, items: str, n: int = 4) -> list[dict]:
    import torch

    p = 1.0 / np.arange(1, N_ITEMS)
    p /= p.sum()

    def draw(size):  # item ids 1 .. n_items - 1 (0 = unknown)
        return 1 + (rng.choice(N_ITEMS - 1, size=size, p=p) if items == "zipf" else rng.integers(0, N_ITEMS - 1, size))

    out = []
    for _ in range(n):
        out.append({
            "user": torch.as_tensor(rng.integers(1, N_USERS, batch)),
            "item": torch.as_tensor(draw(batch)),
            "hist_items": torch.as_tensor(draw((batch, L))),
            "hist_mask": torch.ones(batch, L, dtype=torch.bool),
            "hist_ratings": torch.as_tensor(rng.integers(1, 11, (batch, L)) / 2.0, dtype=torch.float32),
            "hist_log_gap": torch.as_tensor(np.log1p(rng.exponential(200.0, (batch, L))), dtype=torch.float32),
            "dense": torch.as_tensor(rng.standard_normal((batch, F)), dtype=torch.float32),
            "watch": torch.as_tensor(rng.random(batch) < 0.1, dtype=torch.float32),
            "like": torch.as_tensor(rng.random(batch) < 0.05, dtype=torch.float32),
        })
    return out


def build(config, tables):
    from movielens_assets.core.ranking.model import UnifiedRanker, build_optimizers

    model = UnifiedRanker(config, **tables)
    return model, build_optimizers(model, config)


def step(model, opt, batch, weights, phases: np.ndarray | None = None) -> float:
    """One training step; adds the CPU seconds of forward + loss, backward, dense step, sparse step to `phases`."""
    from movielens_assets.core.ranking.model import ranker_loss

    c0 = time.process_time()
    loss, _ = ranker_loss(model(batch), batch, weights)
    c1 = time.process_time()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    c2 = time.process_time()
    if opt.dense is not None:
        opt.dense.step()
    c3 = time.process_time()
    if opt.sparse is not None:
        opt.sparse.step()
    if phases is not None:
        phases += [c1 - c0, c2 - c1, c3 - c2, time.process_time() - c3]
    return float(loss.detach())


def measure(model, opt, data, steps: int, warmup: int = 3, max_seconds: float = float("inf"),
            ) -> tuple[float, float, np.ndarray]:
    """(samples/s of wall time, samples/s of this process's CPU time, CPU ms per step of forward + loss,
    backward, dense step, sparse step) over `steps` steps (fewer, at least 3, past `max_seconds`) after
    `warmup`."""
    weights = model.config.weights_by_task
    for i in range(warmup):
        step(model, opt, data[i % len(data)], weights)
    phases = np.zeros(4)
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    while done < steps and (done < 3 or time.perf_counter() - t0 < max_seconds):
        step(model, opt, data[done % len(data)], weights, phases)
        done += 1
    n = done * data[0]["user"].shape[0]
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0), phases / done * 1e3


def param_counts(model) -> tuple[int, int]:
    from movielens_assets.core.ranking.model import sparse_parameters

    sparse = {id(p) for p in sparse_parameters(model)}
    n_sparse = sum(p.numel() for p in model.parameters() if id(p) in sparse)
    return sum(p.numel() for p in model.parameters()) - n_sparse, n_sparse


def main() -> None:
    import torch

    from movielens_assets.core.ranking.model import UnifiedRankerConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--items", nargs="+", default=["uniform", "zipf"], choices=["uniform", "zipf"])
    parser.add_argument("--samples", type=int, default=40_000, help="training samples timed per setting")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per setting (>= 3 steps)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="config overrides, e.g. embed_dim=32 semantic_rank=None dedup_items=False")
    parser.add_argument("--profile", action="store_true", help="profile the first setting instead")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    tables = item_tables(rng)
    base = UnifiedRankerConfig(
        n_users=N_USERS, n_items=N_ITEMS, n_genres=N_GENRES, n_year_buckets=N_YEARS, n_directors=N_DIRECTORS,
        n_cast=N_CAST, semantic_dim=D_SEM, dense_features=F, history_len=L,
    )
    for kv in args.set:
        key, value = kv.split("=", 1)
        base = replace(base, **{key: ast.literal_eval(value)})
    print(f"config: { {k: v for k, v in base.to_dict().items() if not k.startswith('n_')} }")
    data = {(b, it): batches(rng, b, it) for b in args.batch_sizes for it in args.items}

    if args.profile:
        from torch.profiler import profile

        torch.set_num_threads(args.threads[0])
        model, opt = build(replace(base, **VARIANTS[args.variants[0]]), tables)
        batch_data = data[(args.batch_sizes[0], args.items[0])]
        measure(model, opt, batch_data, 3)
        with profile() as prof:
            measure(model, opt, batch_data, 10, warmup=0)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
        return

    for name in args.variants:
        model, _ = build(replace(base, **VARIANTS[name]), tables)
        dense, sparse = param_counts(model)
        print(f"{name:12s} parameters: {dense:,} dense + {sparse:,} in sparse tables = {dense + sparse:,}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on the box slow the wall-clock rate)")
    print(f"{'items':8s} {'threads':>7s} {'batch':>6s} {'variant':12s} {'samples/s':>10s} {'per CPU-s':>10s}   "
          "CPU ms per step: forward+loss / backward / dense step / sparse step")
    for items in args.items:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for b in args.batch_sizes:
                for name in args.variants:
                    torch.manual_seed(0)
                    model, opt = build(replace(base, **VARIANTS[name]), tables)
                    rate, cpu_rate, ms = measure(model, opt, data[(b, items)], max(5, args.samples // b),
                                                 max_seconds=args.max_seconds)
                    print(f"{items:8s} {threads:7d} {b:6d} {name:12s} {rate:10,.0f} {cpu_rate:10,.0f}   "
                          + " / ".join(f"{x:.1f}" for x in ms), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
