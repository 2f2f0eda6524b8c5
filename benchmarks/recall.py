"""Recall benchmark: ItemCF build vs a scipy baseline, batch recall throughput per channel, faiss indexes.

    .venv/bin/python benchmarks/recall.py                      # 1m, 10m
    .venv/bin/python benchmarks/recall.py --sizes 1m 10m 32m --tt-epochs 1

On synthetic-<size> (CSVs generated once into --cache-dir, shared with benchmarks/ingest.py):

0. prepare (once, cached): ratings.csv -> Parquet (`ingest_csv`), the project's `last_n` split (each user's
   last 3 interactions held out, `split_last_n`), loaded with `load_split` and saved as an .npz so that every
   child process loads the train `Interactions` and the test users in about a second;
1. ItemCF build (`ItemCFRecall().fit`, default `ItemCFParams`) vs a straightforward scipy.sparse build with
   the same pruning — last `max_history` items per user, user weight 1 / log(1 + n_u), cosine normalisation
   by the summed user weights, top `n_neighbors` per item. The baseline is SIMPLIFIED: no time decay and no
   co-occurrence window (it counts every pair of the truncated history, i.e. >= the pairs ours counts:
   at least the same work). On sizes in --equiv-sizes, ours is also run with window = max_history and no
   decay (the baseline's exact definition) and the neighbour lists of the two are compared (overlap);
2. batch recall throughput on ALL test users, as the pipeline does it (`write_channel_candidates`: batches
   of 4096 users, k = 200): popularity, itemcf (the model built in 1), two_tower (short training:
   --tt-epochs over a random sample of --tt-max-examples train rows, served with the full histories;
   training time and rows/s reported separately), semantic (RANDOM L2-normalised 384-d item embeddings:
   no real embeddings are generated for synthetic data; the neighbour structure, and so the work, is the
   same, the quality is not);
3. faiss (`ann.py`): flat vs HNSW vs IVF build and query times for the 384-d (random) semantic vectors
   (queries: every item, k = neighbours + 1, as `SemanticRecall.fit` does) and the two-tower item vectors
   (queries: the test users' vectors, k = 200), the first --ann-queries queries, with recall@k against
   exact search on a query sample.

Every measurement runs in a fresh subprocess that reports its own wall time and peak RSS (ru_maxrss, which
includes the imports and the loaded train data: the `load` row is that floor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECOMMEND_BATCH = 4096  # movielens_assets.core.recall.runner.RECOMMEND_BATCH
K = 200  # movielens_assets.core.recall.runner.CANDIDATES_PER_CHANNEL
SEM_DIM = 384
CHANNELS = ("popularity", "itemcf", "two_tower", "semantic")
ANN_KINDS = ("flat", "hnsw", "ivf")
TARGET_USERS_PER_S = 2000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _work(cache: Path, size: str) -> Path:
    return cache / f"recall-{size}"


# ------------------------------------------------------------------------------------------ prepare (child)


def _prepare(size: str, cache: Path) -> dict:
    import numpy as np

    from movielens_assets.core.data import duck, ingest
    from movielens_assets.core.data.synthetic import generate_movielens, parse_synthetic_name
    from movielens_assets.core.evaluation.splits import load_split, split_last_n

    work = _work(cache, size)
    npz = work / "train.npz"
    out: dict = {"cached": npz.exists()}
    start = time.perf_counter()
    csv_dir = cache / f"synthetic-{size}"
    generate_movielens(parse_synthetic_name(f"synthetic-{size}"), csv_dir, seed=42, tmdb_payloads=False,
                       progress=lambda line: print(f"    {line}", file=sys.stderr))
    out["generate_s"] = time.perf_counter() - start
    marker = (csv_dir / "_SYNTHETIC.json").read_text()  # the .npz is rebuilt when the CSVs were regenerated
    if npz.exists() and str(np.load(npz).get("marker", "")) != marker:
        npz.unlink()
        out["cached"] = False
    if not npz.exists():
        work.mkdir(parents=True, exist_ok=True)
        con = duck.connect(temp_dir=work / "spill")
        t = time.perf_counter()
        ingest.ingest_csv(con, ingest.RATINGS, csv_dir, work / "ratings.parquet", dataset=f"synthetic-{size}")
        out["ingest_s"] = time.perf_counter() - t
        t = time.perf_counter()
        split_last_n(con, work / "ratings.parquet", work / "last_n", n=3)
        split = load_split(con, work / "last_n")
        out["split_s"] = time.perf_counter() - t
        tr = split.train
        tmp = work / "train.tmp.npz"
        np.savez(tmp, indptr=tr.indptr, items=tr.items, ratings=tr.ratings, timestamps=tr.timestamps,
                 n_items=np.int64(tr.n_items), test_users=split.test_user_index.astype(np.int64),
                 marker=np.array(marker))
        tmp.rename(npz)
        con.close()
    train, test_users = _load(cache, size)
    out.update(train_rows=int(train.items.size), users=train.n_users, items=train.n_items,
               test_users=int(test_users.size), seconds=time.perf_counter() - start, peak_mb=_peak_mb())
    return out


def _load(cache: Path, size: str):
    import numpy as np

    from movielens_assets.core.recall.base import Interactions

    z = np.load(_work(cache, size) / "train.npz")
    train = Interactions(z["indptr"], z["items"], z["ratings"], z["timestamps"], int(z["n_items"]))
    return train, z["test_users"]


def _subsample(train, max_rows: int):
    """`train` itself if it has <= max_rows rows, else a uniform random sample of its rows (every user kept,
    rows still sorted by time within a user) -- to bound the two-tower training time."""
    import numpy as np

    from movielens_assets.core.recall.base import Interactions

    if not max_rows or train.items.size <= max_rows:
        return train
    keep = np.sort(np.random.default_rng(0).choice(train.items.size, size=max_rows, replace=False))
    owner = np.repeat(np.arange(train.n_users), np.diff(train.indptr))[keep]
    indptr = np.zeros(train.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=train.n_users), out=indptr[1:])
    return Interactions(indptr, train.items[keep], train.ratings[keep], train.timestamps[keep], train.n_items)


def _semantic_vectors(cache: Path, size: str, n_items: int):
    """Random L2-normalised [n_items, 384] float32 (seed 0), cached as .npy."""
    import numpy as np

    path = _work(cache, size) / f"semantic_random_{SEM_DIM}.npy"
    if path.exists():
        v = np.load(path)
        if v.shape == (n_items, SEM_DIM):
            return v
    v = np.random.default_rng(0).standard_normal((n_items, SEM_DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.save(path, v)
    return v


# ------------------------------------------------------------------------------------------- ItemCF builds


def _itemcf_scipy(train, p) -> tuple:
    """X.T @ W @ X with scipy.sparse on the last `max_history` items per user, cosine, top-N per item."""
    import numpy as np
    import scipy.sparse as sp

    from movielens_assets.core.recall.itemcf import _positions

    lengths = np.diff(train.indptr)
    user_w = (1.0 / np.log1p(np.maximum(lengths, 1))).astype(np.float32)
    kept = np.minimum(lengths, p.max_history)
    pos = _positions(train.indptr[1:] - kept, kept)
    rows = np.repeat(np.arange(train.n_users), kept)
    X = sp.csr_matrix((np.ones(pos.size, np.float32), (rows, train.items[pos])),
                      shape=(train.n_users, train.n_items))
    C = (X.T.tocsr() @ (sp.diags(user_w) @ X)).tocsr()  # item x item, weighted co-occurrence
    item_w = C.diagonal().astype(np.float64)  # = summed user weights of each item
    C.setdiag(0)
    C.eliminate_zeros()
    row_of = np.repeat(np.arange(train.n_items), np.diff(C.indptr))
    C.data = (C.data / np.sqrt(item_w[row_of] * item_w[C.indices])).astype(np.float32)
    del row_of
    n = p.n_neighbors
    nbr_idx = np.full((train.n_items, n), -1, np.int32)
    nbr_sim = np.full((train.n_items, n), np.nan, np.float32)
    for i in range(train.n_items):  # the straightforward per-row top-N
        lo, hi = C.indptr[i], C.indptr[i + 1]
        if hi == lo:
            continue
        d, c = C.data[lo:hi], C.indices[lo:hi]
        top = np.argpartition(-d, n - 1)[:n] if d.size > n else np.arange(d.size)
        top = top[np.argsort(-d[top], kind="stable")]
        nbr_idx[i, : top.size], nbr_sim[i, : top.size] = c[top], d[top]
    return nbr_idx, nbr_sim, int(C.nnz)


def _overlap(a, b) -> float:
    """Mean over items (with neighbours in either) of |A ∩ B| / max(|A|, |B|)."""
    import numpy as np

    n_items = a.shape[0]

    def keys(x):
        r, c = np.nonzero(x >= 0)
        return r.astype(np.int64) * n_items + x[r, c]

    common = np.intersect1d(keys(a), keys(b), assume_unique=True) // n_items
    inter = np.bincount(common, minlength=n_items)
    denom = np.maximum((a >= 0).sum(1), (b >= 0).sum(1))
    has = denom > 0
    return float((inter[has] / denom[has]).mean()) if has.any() else float("nan")


# ------------------------------------------------------------------------------------------------ children


def _child(task: dict) -> dict:
    import numpy as np

    cache, size, kind = Path(task["cache"]), task["size"], task["task"]
    work = _work(cache, size)
    t0 = time.perf_counter()
    train, test_users = _load(cache, size)
    res: dict = {"load_s": time.perf_counter() - t0}
    start = time.perf_counter()

    if kind == "load":
        pass
    elif kind in ("itemcf-ours", "itemcf-ours-equiv"):
        from movielens_assets.core.recall.itemcf import ItemCFParams, ItemCFRecall

        params = ItemCFParams()
        if kind == "itemcf-ours-equiv":
            params = ItemCFParams(window=params.max_history, time_decay_days=None)
        model = ItemCFRecall(params).fit(train)
        res["seconds"] = time.perf_counter() - start
        res["peak_mb"] = _peak_mb()
        np.save(work / f"{kind}-nbr.npy", model.nbr_idx)
        if kind == "itemcf-ours":
            model.save(work / "itemcf_model")
        return res
    elif kind == "itemcf-scipy":
        from movielens_assets.core.recall.itemcf import ItemCFParams

        nbr_idx, _sim, nnz = _itemcf_scipy(train, ItemCFParams())
        res.update(seconds=time.perf_counter() - start, peak_mb=_peak_mb(), nnz=nnz)
        np.save(work / f"{kind}-nbr.npy", nbr_idx)
        return res
    elif kind.startswith("recall-"):
        channel = kind.removeprefix("recall-")
        if channel == "popularity":
            from movielens_assets.core.recall.popularity import PopularityRecall

            model = PopularityRecall().fit(train)
        elif channel == "itemcf":
            from movielens_assets.core.recall.itemcf import ItemCFRecall

            model = ItemCFRecall.load(work / "itemcf_model", train)  # built by the itemcf-ours child
        elif channel == "two_tower":
            import torch

            from movielens_assets.core.recall.two_tower import TwoTowerConfig, TwoTowerRecall

            fit_on = _subsample(train, task["tt_max_examples"])
            model = TwoTowerRecall(TwoTowerConfig(epochs=task["tt_epochs"]), device=task["tt_device"]).fit(fit_on)
            model.train = train  # serve (histories, seen items) from the FULL training data
            res["train_s"] = model.training_log_["train_seconds"]
            res["examples"] = int(fit_on.items.size)
            res["device"] = model.training_log_["device"]
            res["torch_threads"] = model.config.num_threads or torch.get_num_threads()
        elif channel == "semantic":
            from movielens_assets.core.recall.semantic import SemanticRecall

            model = SemanticRecall(_semantic_vectors(cache, size, train.n_items)).fit(train)
        else:
            raise ValueError(channel)
        res["fit_s"] = time.perf_counter() - start
        t = time.perf_counter()
        batch, k = task["batch"], task["k"]
        parts = [model.recommend(test_users[s : s + batch], k) for s in range(0, test_users.size, batch)]
        res["recommend_s"] = time.perf_counter() - t
        items = np.concatenate([p[0] for p in parts])
        res["users"] = int(test_users.size)
        res["filled"] = float((items >= 0).mean())  # share of the k slots filled
        if channel == "two_tower":  # vectors for the faiss benchmark
            np.save(work / "tt_item_vectors.npy", model.item_vectors_)
            np.save(work / "tt_user_vectors.npy", model.user_vectors(test_users))
    elif kind.startswith("ann-"):
        from movielens_assets.core.recall.ann import AnnConfig, AnnIndex

        _, ann_kind, vectors = kind.split("-")
        if vectors == "semantic":
            from movielens_assets.core.recall.semantic import SemanticConfig

            x = _semantic_vectors(cache, size, train.n_items)
            q, k = x, SemanticConfig().neighbours + 1
        else:
            x, q, k = np.load(work / "tt_item_vectors.npy"), np.load(work / "tt_user_vectors.npy"), K
        q = q[: task["ann_queries"]]
        t = time.perf_counter()
        index = AnnIndex.build(x, AnnConfig(kind=ann_kind))
        res["build_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ids, _ = index.search(q, k)
        res["query_s"] = time.perf_counter() - t
        res.update(n=int(x.shape[0]), dim=int(x.shape[1]), nq=int(q.shape[0]), k=k)
        # recall@k against exact inner-product search on a sample of queries
        sample = np.random.default_rng(0).choice(q.shape[0], size=min(1000, q.shape[0]), replace=False)
        exact = np.argpartition(-(q[sample] @ x.T), k - 1, axis=1)[:, :k]
        hits = [np.intersect1d(exact[i], ids[s]).size for i, s in enumerate(sample)]
        res["recall"] = float(np.sum(hits) / exact.size)
    else:
        raise ValueError(kind)
    res["seconds"] = time.perf_counter() - start
    res["peak_mb"] = _peak_mb()
    return res


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1m", "10m"], help="synthetic sizes (32m accepted)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / ".bench")
    parser.add_argument("--k", type=int, default=K, help="items per user in the throughput runs")
    parser.add_argument("--batch", type=int, default=RECOMMEND_BATCH, help="users per recommend() call")
    parser.add_argument("--tt-epochs", type=int, default=1, help="two-tower training epochs (short on purpose)")
    parser.add_argument("--tt-device", default="cpu", help="two-tower training device (cpu | cuda | auto)")
    parser.add_argument("--tt-max-examples", type=int, default=1_000_000,
                        help="two-tower trains on a random sample of this many train rows (0: all)")
    parser.add_argument("--ann-queries", type=int, default=10_000, help="queries per faiss search run (the first N)")
    parser.add_argument("--equiv-sizes", nargs="*", default=["1m"],
                        help="sizes on which ours is also run with the baseline's exact definition")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    if args.prepare:
        print(json.dumps(_prepare(args.prepare, args.cache_dir)))
        return

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()

    def run(size: str, task: str) -> dict:
        spec = {"task": task, "size": size, "cache": str(args.cache_dir), "k": args.k, "batch": args.batch,
                "tt_epochs": args.tt_epochs, "tt_device": args.tt_device, "tt_max_examples": args.tt_max_examples,
                "ann_queries": args.ann_queries}
        return _run_child(["--child", json.dumps(spec)])

    results: dict[str, dict] = {}
    for size in args.sizes:
        print(f"== synthetic-{size}: preparing (cached) ...", flush=True)
        prep = _run_child(["--prepare", size, "--cache-dir", str(args.cache_dir)])
        print(f"   {prep['train_rows']:,} train ratings, {prep['users']:,} users, {prep['items']:,} items, "
              f"{prep['test_users']:,} test users; prepare {prep['seconds']:.1f}s"
              + (" (cached)" if prep["cached"] else f" (ingest {prep['ingest_s']:.1f}s, split {prep['split_s']:.1f}s)"),
              flush=True)
        r: dict = {"prep": prep, "build": {}, "recall": {}, "ann": {}}
        tasks = ["load", "itemcf-ours", "itemcf-scipy"] + (["itemcf-ours-equiv"] if size in args.equiv_sizes else [])
        for task in tasks:
            r["build"][task] = res = run(size, task)
            print(f"   {task:<18} {res['seconds']:8.2f} s  peak {res['peak_mb']:7.0f} MB", flush=True)
        work = _work(args.cache_dir, size)
        import numpy as np

        nbr = {t: np.load(work / f"{t}-nbr.npy") for t in tasks if t != "load"}
        r["overlap"] = _overlap(nbr["itemcf-ours"], nbr["itemcf-scipy"])
        if "itemcf-ours-equiv" in nbr:
            r["overlap_equiv"] = _overlap(nbr["itemcf-ours-equiv"], nbr["itemcf-scipy"])
        del nbr
        print(f"   neighbour overlap ours vs scipy: {r['overlap']:.3f}"
              + (f"; same definition: {r['overlap_equiv']:.3f}" if "overlap_equiv" in r else ""), flush=True)
        for channel in CHANNELS:
            r["recall"][channel] = res = run(size, f"recall-{channel}")
            print(f"   recall {channel:<11} fit {res['fit_s']:7.2f} s  recommend {res['recommend_s']:7.2f} s  "
                  f"{res['users'] / res['recommend_s']:9,.0f} users/s  peak {res['peak_mb']:7.0f} MB", flush=True)
        for vectors in ("semantic", "tt"):
            for ann_kind in ANN_KINDS:
                r["ann"][(vectors, ann_kind)] = res = run(size, f"ann-{ann_kind}-{vectors}")
                print(f"   faiss {vectors:<8} {ann_kind:<5} build {res['build_s']:7.2f} s  "
                      f"query {res['query_s']:7.2f} s  recall@{res['k']} {res['recall']:.3f}", flush=True)
        results[size] = r

    print("\n### ItemCF build (fresh process each; peak RSS includes the loaded train data, see `load`)\n")
    print("| size | train ratings | items | load MB | ours s / MB | scipy s / MB | time ours/scipy | "
          "memory ours/scipy | C nnz (scipy) | neighbour overlap | overlap, same definition |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in results.items():
        b, p = r["build"], r["prep"]
        o, s = b["itemcf-ours"], b["itemcf-scipy"]
        eq = f"{r['overlap_equiv']:.3f} ({b['itemcf-ours-equiv']['seconds']:.1f} s / " \
             f"{b['itemcf-ours-equiv']['peak_mb']:.0f} MB)" if "overlap_equiv" in r else "—"
        print(f"| {size} | {p['train_rows']:,} | {p['items']:,} | {b['load']['peak_mb']:.0f} | "
              f"{o['seconds']:.2f} / {o['peak_mb']:.0f} | {s['seconds']:.2f} / {s['peak_mb']:.0f} | "
              f"{o['seconds'] / s['seconds']:.2f}x | {o['peak_mb'] / s['peak_mb']:.2f}x | {s['nnz']:,} | "
              f"{r['overlap']:.3f} | {eq} |")

    print(f"\n### Batch recall throughput (all test users, batches of {args.batch}, k = {args.k}; "
          f"target >= {TARGET_USERS_PER_S:,} users/s)\n")
    print("| size | channel | fit / train s | recommend s | users | users/s | vs target | slots filled | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, r in results.items():
        for channel, c in r["recall"].items():
            ups = c["users"] / c["recommend_s"]
            if channel == "itemcf":
                fit = f"{r['build']['itemcf-ours']['seconds']:.2f} (build above)"
            elif channel == "two_tower":
                fit = (f"{c['fit_s']:.2f} (train {c['train_s']:.2f}: {args.tt_epochs} epoch of {c['examples']:,} rows, "
                       f"{c['examples'] * args.tt_epochs / c['train_s']:,.0f} rows/s, {c['device']}, "
                       f"{c['torch_threads']} thread)")
            else:
                fit = f"{c['fit_s']:.2f}"
            print(f"| {size} | {channel} | {fit} | {c['recommend_s']:.2f} | {c['users']:,} | {ups:,.0f} | "
                  f"{ups / TARGET_USERS_PER_S:.2f}x | {c['filled']:.3f} | {c['peak_mb']:.0f} |")

    print("\n### faiss indexes (`ann.py` defaults; recall@k vs exact search on <= 1,000 sampled queries)\n")
    print("| size | vectors | n x d | index | build s | queries x k | query s | queries/s | recall@k | "
          "build vs flat | query speed vs flat |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in results.items():
        for (vectors, ann_kind), a in r["ann"].items():
            flat = r["ann"][(vectors, "flat")]
            label = f"semantic (random {SEM_DIM}-d)" if vectors == "semantic" else "two-tower items"
            print(f"| {size} | {label} | {a['n']:,} x {a['dim']} | {ann_kind} | {a['build_s']:.2f} | "
                  f"{a['nq']:,} x {a['k']} | {a['query_s']:.2f} | {a['nq'] / a['query_s']:,.0f} | {a['recall']:.3f} | "
                  f"{a['build_s'] / max(flat['build_s'], 1e-9):.1f}x | {flat['query_s'] / a['query_s']:.2f}x |")

    print("\nNotes: the scipy baseline has no time decay and no co-occurrence window (all pairs of the truncated "
          "history: at least the pairs ours counts), so 'neighbour overlap' compares different definitions; "
          "'same definition' runs ours with window = max_history and no decay. Semantic vectors are random "
          "(no real embeddings for synthetic data): ANN recall on them is a worst case.")
    print(f"\nmachine: {os.cpu_count()} cores; benchmark wall time {time.perf_counter() - total:.0f} s; command: "
          f"python benchmarks/recall.py {' '.join(sys.argv[1:]) or '(defaults)'}")


if __name__ == "__main__":
    main()
