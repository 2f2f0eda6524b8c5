"""UnifiedRanker end to end on REAL sample shards: loader, training (full model + ablations), re-rank scoring.

    .venv/bin/python benchmarks/ranker.py                                   # everything, defaults below
    .venv/bin/python benchmarks/ranker.py --build-shards 2 --train-rows 60000 --settings 1x1 \\
        --loader-rows 300000 --score-users 500 --score-threads 1            # a quick check (~2 min)
    .venv/bin/python benchmarks/ranker.py --only loader                     # one part: loader / train / score
    .venv/bin/python benchmarks/ranker.py --samples-dir /tmp/bench_ranking/1m/ranking/samples/last_n
        # shards kept by `benchmarks/ranking_samples.py --keep-samples` (used as they are, never rebuilt)

The issue's targets, on 2 CPU cores: the full model >= 20,000 training samples/s, the loader alone >= 3x the
model's samples/s (it must not be the bottleneck), >= 200,000 candidates/s scored by the end-to-end re-rank;
peak memory reported; a full ML-32M epoch (~320M samples) EXTRAPOLATED from the measured rate.

INPUTS (real data built by the project's code, nothing random fed to the model):
- The prepared synthetic dataset of `benchmarks/ranking_samples.py` (`--prepared-dir`/<size>/, default
  /tmp/bench_ranking/1m/: ratings, splits, the last_n sequence store, the item profile with synthetic TMDb /
  embedding side inputs, the item events index, the circulation, the window "merged" candidate lists). It is
  (re)built by that script's own prepare step (`--prepare-child`, cached: a no-op when it exists).
- The sample shards: `--samples-dir` (default /tmp/bench_ranker/<size>/samples/). When the directory is ours
  (a `_bench.json` marker naming the prepared dataset and the shard count) every missing shard of
  `--build-shards` (default: all `--shards` = 16) is built, `--shard-workers` processes at a time, exactly as
  `ranking_samples.py` builds one (`_load_inputs` + `write_shard` with `SamplingConfig()` defaults) but into our
  directory (that script deletes its shards after each run unless --keep-samples, and wipes them on its next
  run); a stale marker (the dataset was regenerated) rebuilds them. A directory that is not ours is used as is.
  synthetic-1m: 16 shards, ~9.8M sample rows, ~470 MB, ~2 min to build on 2 cores (CPU ~80 s).

MEASUREMENTS, each in a fresh process. Peak RSS per process: `ru_maxrss` (the whole process: imports ~300 MB,
and the setup — `fit_normalizer` over 500k rows — included), the timed part's own peak (VmHWM, reset after the
setup; "from" = the RSS at the reset: pyarrow's pool keeps what the setup freed) and the largest DataLoader
worker (`RUSAGE_CHILDREN`). CPU seconds too: on a shared machine "samples per main-process CPU second" (1 torch
thread) is close to the rate on an otherwise idle core, the wall-clock rate is not.
- loader: `SampleStream(...).iterate()` in the process (batch 1024, role `train`, `--loader-rows` rows:
  >= 2 rounds of Parquet reads of `mix_units` = 2 row groups) — samples/s, batches/s, the share spent in
  `BatchBuilder`, CPU seconds per wall second (pyarrow's thread pool reads in parallel); and the same stream
  through `torch.utils.data.DataLoader(batch_size=None, num_workers=1)` as `train()` iterates it.
- train: per setting (`--settings`, THREADSxWORKERS: torch intra-op threads x DataLoader workers; the
  `unified_ranker` asset's default is 2x0, everything in one process; it was 1x1 before 2026-12-02) and per
  variant (the full model
  = `UnifiedRankerConfig()` defaults with the data's vocabularies, as `fit_ranker` sizes it, and each ablation of
  `trainer.ABLATIONS` — `full_same_budget` IS the full model and is not run twice), batch 1024 (and the full
  model at `--extra-batch` 2048): `train()`'s inner loop, statement for statement (DataLoader over a
  `SampleStream`, `build_optimizers`, forward, `ranker_loss`, zero_grad, backward, step, the loss read back),
  over `--train-rows` training rows. Reported: samples/s (wall) and per main-process CPU second after
  `--warmup-steps` (20: numba compilation of the sparse optimizer, worker start, the first Parquet reads),
  samples/s of the whole loop (what `train()` logs per epoch), the share of the steady-state time spent
  waiting for the next batch, wall ms per step by phase (data wait / forward+loss / backward / dense step /
  sparse step). Setup (normaliser fit, vocabularies,
  item tables) is timed apart. With N train rows the first `mix_units` row groups (512k rows) are read once
  during the warm-up: with num_workers=0 the later reads (one every 512k rows) are not inside a short run; the
  loader figures include them.
- score: `rerank()` — the `ranked_recommendations` asset's code — over the window "merged" lists of the first
  `--score-users` users (by id) of the prepared dir (the same schema and 200 candidates per user as the test
  stage's merged lists; the prepared dir has no test-stage lists), cut-off = each user's test start, an
  untrained full model wrapped in a `RankerCheckpoint` (scoring cost does not depend on the weights), the
  asset's `users_per_chunk` = 1,000. Timed: `rerank` end to end (candidates/s) with each of `--score-workers`
  worker processes (the asset's default: one per core, each with one torch thread; `--score-threads` sets the
  torch threads of the 1-worker runs), then, for 1 worker, its parts on the same users: `candidate_rows` (the
  point-in-time features of the candidates), `score_table` (grouped batch building + model) and
  `BatchBuilder(group_histories=True)` alone on the same slices, at each of `--score-batches` (2,048:
  score_table's default, the batch `rerank` scores with).

EXTRAPOLATIONS (stated as such, printed under the tables): one ML-32M epoch = 320M samples / the full
model's measured samples/s; the asset's default training budget at most (8 epochs x 2M rows for the full
model + 5 ablations x 4 epochs x 2M rows; early stopping ends most runs sooner); 40M candidates (200k
users x 200) / the measured candidates/s. The 32M tables (200k users, 87k items) are larger than 1M's (6k
users, 9k items): random row access costs more there, so these are lower bounds on the time rather than
predictions.

Results: tables on stdout, everything as JSON in --work-dir (path printed). Child logs in --work-dir/logs/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EPOCH_32M = 320_000_000  # ~10 sample rows per ML-32M rating
CANDIDATES_32M = 200_000 * 200  # 200k test users x 200 merged candidates
ASSET_BUDGET_ROWS = 8 * 2_000_000 + 5 * 4 * 2_000_000  # unified_ranker defaults, at most: full + 5 ablations
TARGET_TRAIN = 20_000
TARGET_SCORE = 200_000
TARGET_LOADER_RATIO = 3.0
MARKER = "_bench.json"


def _rs():
    """benchmarks/ranking_samples.py as a module (its prepare step, paths and input loading)."""
    mod = sys.modules.get("ranking_samples")
    if mod is None:
        spec = importlib.util.spec_from_file_location("ranking_samples", ROOT / "benchmarks" / "ranking_samples.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["ranking_samples"] = mod
        spec.loader.exec_module(mod)
    return mod


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


_RSS_AT_RESET: list[float] = []


def _reset_peak() -> None:
    """Start the kernel's peak-RSS counter (VmHWM) over: the timed part's own peak, apart from the setup's (the
    RSS at this point is kept: pyarrow's memory pool keeps what the setup freed, so the timed peak starts there)."""
    _RSS_AT_RESET.append(_status_mb("VmRSS:") or 0.0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux / not permitted: VmHWM then equals ru_maxrss
        pass


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))
    except (OSError, StopIteration):
        return None


def _usage() -> dict:
    """Peak RSS of this process (ru_maxrss: the whole process, setup included; VmHWM: since `_reset_peak`, the
    timed part) and of its largest waited-for child (DataLoader workers), CPU seconds."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    hwm = _status_mb("VmHWM:")
    return {"peak_rss_mb": round(me.ru_maxrss / 1024, 1), "timed_peak_rss_mb": None if hwm is None else round(hwm, 1),
            "rss_before_timed_mb": round(_RSS_AT_RESET[0], 1) if _RSS_AT_RESET else None,
            "worker_peak_rss_mb": round(kids.ru_maxrss / 1024, 1), "cpu_s": round(me.ru_utime + me.ru_stime, 2),
            "worker_cpu_s": round(kids.ru_utime + kids.ru_stime, 2)}


# ---------------------------------------------------------------------------------------------- inputs


def _sample_files(samples: Path) -> list[Path]:
    return sorted(Path(samples).glob("shard=*/part-*.parquet"))


def ensure_inputs(args) -> dict:
    """Prepare the dataset (cached by ranking_samples.py) and build the missing shards of our samples dir."""
    rs = _rs()
    work = args.prepared_dir.resolve()
    p = rs._paths(work, args.size)
    print(f"== inputs: prepared synthetic-{args.size} in {p['base']} (ranking_samples.py's cached prepare step)",
          flush=True)
    prep = rs._run_child(["--prepare-child", args.size, str(work), str(args.seed)], work / f"prepare-{args.size}.log")
    samples = args.samples_dir.resolve()
    marker = {"prepared": str(p["base"]), "dataset": json.loads(prep["marker"])["spec"], "seed": args.seed,
              "n_shards": args.shards}
    info = {"prepared_dir": str(p["base"]), "samples_dir": str(samples), "samples_owner": "ours", "built_shards": []}
    existing = _sample_files(samples)
    if existing and not (samples / MARKER).is_file():
        print(f"   samples: {len(existing)} files in {samples} (not built by this script: used as they are)")
        info["samples_owner"] = "external"
        return info
    if (samples / MARKER).is_file() and json.loads((samples / MARKER).read_text()) != marker:
        print(f"   samples in {samples} come from another dataset / shard count: rebuilding them")
        shutil.rmtree(samples)
    samples.mkdir(parents=True, exist_ok=True)
    (samples / MARKER).write_text(json.dumps(marker, indent=1))
    from movielens_assets.core.ranking.shards import shard_keys

    keys = shard_keys(args.shards)
    todo = [s for s in range(min(args.build_shards or args.shards, args.shards))
            if not (samples / f"shard={keys[s]}").is_dir()]
    if todo:
        print(f"   building shards {', '.join(keys[s] for s in todo)} of {args.shards} into {samples} "
              f"({args.shard_workers} processes at a time) ...", flush=True)
        t0 = time.perf_counter()
        running: list[tuple[subprocess.Popen, Path]] = []
        pending = list(todo)
        while pending or running:
            while pending and len(running) < args.shard_workers:
                s = pending.pop(0)
                task = {"kind": "shard", "prepared": str(work), "size": args.size, "shard": s,
                        "n_shards": args.shards, "out": str(samples / f"shard={keys[s]}")}
                running.append(_spawn(task, args.work_dir / "logs" / f"shard-{keys[s]}.log"))
            time.sleep(0.1)
            for proc, log in list(running):
                if proc.poll() is None:
                    continue
                running.remove((proc, log))
                res = _collect(proc, log)
                info["built_shards"].append(res)
                print(f"   shard {res['key']}: {res['rows']:,} rows in {res['seconds']:.1f} s, "
                      f"peak {res['peak_rss_mb']:.0f} MB", flush=True)
        info["build_s"] = round(time.perf_counter() - t0, 1)
    files = _sample_files(samples)
    print(f"   samples: {len(files)} shard files, {sum(f.stat().st_size for f in files) / 2**20:.0f} MB in {samples}",
          flush=True)
    return info


def _shard_child(task: dict) -> dict:
    """One shard, as `ranking_samples.py`'s `_shard_child` (the asset's `_build_shard`), into task['out']."""
    import numpy as np

    from movielens_assets.core.data import duck
    from movielens_assets.core.data.duck import sql_str
    from movielens_assets.core.ranking.samples import (
        CandidateLists,
        SamplingConfig,
        write_shard,
    )
    from movielens_assets.core.ranking.shards import shard_keys, shard_sql

    rs = _rs()
    p = rs._paths(Path(task["prepared"]), task["size"])
    shard, n_shards = task["shard"], task["n_shards"]
    channels, store, engine, circulation = rs._load_inputs(p)
    in_shard = shard_sql("user_id", n_shards) + f" = {shard}"
    con = duck.connect(temp_dir=p["spill"] / f"bench-ranker-shard-{shard}")
    candidates = CandidateLists.from_table(con.sql(
        f"SELECT * FROM read_parquet({sql_str(p['window_merged'])}) WHERE {in_shard}").to_arrow_table(), channels)
    rated = con.execute(f"SELECT (user_id::BIGINT << 32) | movie_id::BIGINT AS k FROM "
                        f"read_parquet({sql_str(p['ratings'])}) WHERE {in_shard} ORDER BY k").fetchnumpy()["k"]
    con.close()
    stats = write_shard(Path(task["out"]), store=store, engine=engine, circulation=circulation,
                        interacted=np.asarray(rated, dtype=np.int64), candidates=candidates,
                        catalogue=engine.items.movie_ids, shard=shard, n_shards=n_shards, config=SamplingConfig(),
                        metadata={"movielens.dataset": f"synthetic-{task['size']}", "movielens.protocol": "last_n"},
                        progress=_say)
    return {**stats, "key": shard_keys(n_shards)[shard], **_usage()}


# ------------------------------------------------------------------------------------- shared child setup


def _setup(task: dict, model_changes: dict | None = None, exclude: tuple[str, ...] = ()) -> dict:
    """What `fit_ranker` builds before training, from the same functions: units, normaliser (training rows
    only), vocabularies, item tables, the model config sized to them, the BatchBuilder."""
    from movielens_assets.core.ranking.config import UnifiedRankerConfig
    from movielens_assets.core.ranking.data import BatchBuilder, RankingVocab
    from movielens_assets.core.ranking.loader import row_groups
    from movielens_assets.core.ranking.profiles import ItemFeatures
    from movielens_assets.core.ranking.sequences import SequenceStore
    from movielens_assets.core.ranking.trainer import feature_columns, fit_normalizer

    t0 = time.perf_counter()
    p = _rs()._paths(Path(task["prepared"]), task["size"])
    store = SequenceStore.load(p["sequences"])
    items = ItemFeatures.load(p["items"])
    files = _sample_files(Path(task["samples"]))
    units = row_groups(files)
    names = feature_columns(files, exclude)
    normalizer = fit_normalizer(units, names, task["normalizer_rows"], task["seed"])
    vocab = RankingVocab.build(store, items)
    tables = vocab.item_tables(items)
    sizes = vocab.sizes
    config = replace(  # exactly fit_ranker's sizing
        UnifiedRankerConfig(**(model_changes or {})), n_users=sizes["users"], n_items=sizes["items"],
        n_genres=sizes["genres"], n_year_buckets=sizes["year_buckets"],
        n_directors=sizes["directors"] if tables["directors"] is not None else 0,
        n_cast=sizes["cast"] if tables["cast"] is not None else 0,
        semantic_dim=tables["semantic"].shape[1] if tables["semantic"] is not None else 0,
        dense_features=normalizer.width)
    builder = BatchBuilder(store, vocab, normalizer, config.history_len)
    return {"paths": p, "store": store, "items": items, "units": units, "vocab": vocab, "tables": tables,
            "normalizer": normalizer, "config": config, "builder": builder,
            "info": {"setup_s": round(time.perf_counter() - t0, 2), "row_groups": len(units),
                     "sample_rows": int(sum(u[2] for u in units)), "features": len(names),
                     "dense_inputs": normalizer.width, "vocab": sizes}}


def _model(s: dict):
    from movielens_assets.core.ranking.model import UnifiedRanker

    t = s["tables"]
    return UnifiedRanker(s["config"], t["genres"], t["year_bucket"], t["directors"], t["cast"], t["semantic"],
                         t["semantic_mask"])


# ------------------------------------------------------------------------------------------ loader child


def _loader_child(task: dict) -> dict:
    import torch

    from movielens_assets.core.ranking.loader import SampleStream, StreamConfig

    s = _setup(task)
    inner = s["builder"]
    built = {"s": 0.0}

    class TimedBuilder:  # the same BatchBuilder, its seconds counted (in-process mode only)
        columns = inner.columns

        def __call__(self, table):
            t = time.perf_counter()
            out = inner(table)
            built["s"] += time.perf_counter() - t
            return out

    batch = task["batch_size"]
    workers = task["workers"]
    builder = TimedBuilder() if workers is None else inner
    stream = SampleStream(s["units"], builder, StreamConfig(batch_size=batch, role="train",
                                                            max_rows=task["rows"], seed=task["seed"]))
    if workers is None:  # iterate() in this process: NumPy batches
        batches = stream.iterate()
    else:  # as train() iterates it: tensors from DataLoader worker processes
        batches = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                                   persistent_workers=False))
    _reset_peak()
    c0, t0 = time.process_time(), time.perf_counter()
    marks, sizes = [], []
    for b in batches:
        marks.append(time.perf_counter())
        sizes.append(int(b["item"].shape[0] if "item" in b else b["ints"].shape[0]))  # NumPy / packed tensors
    wall = time.perf_counter() - t0
    n = sum(sizes)
    after_first = (n - sizes[0]) / (marks[-1] - marks[0]) if len(marks) > 1 else float("nan")
    return {"mode": "iterate (in process)" if workers is None else f"DataLoader, {workers} worker(s)",
            "workers": workers, "batch_size": batch, "batches": len(sizes), "samples": n, "seconds": round(wall, 2),
            "samples_per_s": round(n / wall, 1), "batches_per_s": round(len(sizes) / wall, 2),
            "samples_per_s_after_first": round(after_first, 1), "first_batch_s": round(marks[0] - t0, 2),
            "builder_share": round(built["s"] / wall, 3) if workers is None else None,
            "cpu_per_wall": round((time.process_time() - c0) / wall, 2), **s["info"], **_usage()}


# ------------------------------------------------------------------------------------------- train child


def _train_child(task: dict) -> dict:
    """`trainer.train`'s epoch loop (one epoch of `rows` rows), each step timed by phase."""
    import numpy as np
    import torch

    from movielens_assets.core.ranking.config import UnifiedRankerConfig
    from movielens_assets.core.ranking.loader import SampleStream, StreamConfig, unpack_batch
    from movielens_assets.core.ranking.model import (
        build_optimizers,
        ranker_loss,
        sparse_parameters,
    )
    from movielens_assets.core.ranking.trainer import TrainConfig, _to_device, ablation

    base = TrainConfig(batch_size=task["batch_size"], num_threads=task["threads"], num_workers=task["workers"],
                       max_rows_per_epoch=task["rows"], normalizer_rows=task["normalizer_rows"], seed=task["seed"])
    if task["variant"] == "full":
        model_cfg, train_cfg = UnifiedRankerConfig(), base
    else:
        model_cfg, train_cfg = ablation(task["variant"], UnifiedRankerConfig(), base)
    changes = {k: getattr(model_cfg, k) for k in ("use_din", "use_cross", "tasks", "task_weights")}
    torch.manual_seed(train_cfg.seed)  # as fit_ranker
    s = _setup(task, changes, train_cfg.exclude_features)
    model = _model(s)
    sparse_ids = {id(p) for p in sparse_parameters(model)}
    n_sparse = sum(p.numel() for p in model.parameters() if id(p) in sparse_ids)
    n_dense = sum(p.numel() for p in model.parameters()) - n_sparse

    # ---- from here: trainer.train, one epoch (validation and early stopping left out)
    dev = torch.device("cpu")
    optimizers = build_optimizers(model, model.config)
    weights = model.config.weights_by_task
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    stream = SampleStream(s["units"], s["builder"], StreamConfig(
        batch_size=train_cfg.batch_size, role=train_cfg.train_role, max_rows=train_cfg.max_rows_per_epoch,
        seed=train_cfg.seed))
    stream.set_epoch(0)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=train_cfg.num_workers,
                                         persistent_workers=False)
    model.train()
    steps: list[tuple] = []  # (samples, start, start CPU, data wait, forward+loss, backward, dense step, sparse step)
    total, parts = 0.0, {t: 0.0 for t in model.config.tasks}
    _reset_peak()
    it = iter(loader)
    t_loop = time.perf_counter()
    c_loop = time.process_time()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            batch = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        batch = _to_device(unpack_batch(batch), dev)
        logits = model(batch)
        loss, per_task = ranker_loss(logits, batch, weights)
        t2 = time.perf_counter()
        optimizers.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        if optimizers.dense is not None:  # RankerOptimizers.step(): dense, then sparse
            optimizers.dense.step()
        t4 = time.perf_counter()
        if optimizers.sparse is not None:
            optimizers.sparse.step()
        t5 = time.perf_counter()
        n = int(batch["item"].shape[0])  # train()'s bookkeeping: the loss read back
        total += float(loss.detach()) * n
        for t, v in per_task.items():
            parts[t] += float(v.detach()) * n
        steps.append((n, t0, c0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))
    t_end, cpu_end = time.perf_counter(), time.process_time()
    cpu = cpu_end - c_loop
    del it, loader

    w = min(task["warmup_steps"], max(len(steps) - 3, 0))
    arr = np.asarray([x[3:] for x in steps[w:]])
    steady_n = sum(x[0] for x in steps[w:])
    steady_s = t_end - steps[w][1]
    all_n = sum(x[0] for x in steps)
    return {"variant": task["variant"], "batch_size": train_cfg.batch_size, "threads": task["threads"],
            "workers": task["workers"], "steps": len(steps), "warmup_steps": w, "samples": all_n,
            "samples_per_s": round(steady_n / steady_s, 1),
            "samples_per_s_all": round(all_n / (t_end - t_loop), 1),
            "warmup_s": round(steps[w][1] - t_loop, 2), "steady_s": round(steady_s, 2),
            "samples_per_cpu_s": round(steady_n / (cpu_end - steps[w][2]), 1),
            "first_steps_ms": [[round(v * 1e3, 1) for v in x[3:]] for x in steps[:5]],
            "data_wait_share": round(float(arr[:, 0].sum()) / steady_s, 3),
            "ms_per_step": dict(zip(("data_wait", "forward_loss", "backward", "dense_step", "sparse_step"),
                                    (round(float(v) * 1e3, 2) for v in arr.mean(axis=0)), strict=True)),
            "main_cpu_per_wall": round(cpu / (t_end - t_loop), 2), "loss": round(total / max(all_n, 1), 4),
            "params_dense": n_dense, "params_sparse": n_sparse, **s["info"], **_usage()}


# ------------------------------------------------------------------------------------------- score child


def _score_child(task: dict) -> dict:
    """`rerank` (the `ranked_recommendations` asset's code) end to end, then its parts on the same users."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from movielens_assets.core.ranking.rerank import candidate_rows, rerank
    from movielens_assets.core.ranking.sequences import NO_TIME
    from movielens_assets.core.ranking.trainer import (
        RankerCheckpoint,
        TrainConfig,
        score_table,
    )

    if task["threads"]:
        torch.set_num_threads(task["threads"])
    s = _setup(task)
    model = _model(s).eval()
    checkpoint = RankerCheckpoint(model, s["vocab"], s["normalizer"], s["tables"], TrainConfig(), {})
    channels, store, engine, _ = _rs()._load_inputs(s["paths"])
    merged = pq.read_table(s["paths"]["window_merged"])
    cand_users = np.unique(merged.column("user_id").to_numpy()).astype(np.int64)
    starts = np.asarray(store.test_start)[store.user_index(cand_users)]
    eligible = cand_users[(store.user_index(cand_users) >= 0) & (starts != NO_TIME)]
    users = eligible[: task["users"]]
    chunk = task["users_per_chunk"]

    _reset_peak()
    t0 = time.perf_counter()  # warm-up: first calls (imports, allocations, torch kernels) on a few users
    rerank({"unified_ranker": checkpoint}, store, engine, merged, users[:50], users_per_chunk=chunk)
    warmup_s = time.perf_counter() - t0

    def best(fn, repeat: int) -> tuple[float, object]:
        times, out = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

    r = task["repeat"]
    rerank_s, scored = best(lambda: rerank({"unified_ranker": checkpoint}, store, engine, merged, users,
                                           users_per_chunk=chunk, workers=task["workers"],
                                           num_threads=task["threads"] or None), r)
    rows_n = scored["unified_ranker"].num_rows
    del scored
    u_starts = np.asarray(store.test_start)[store.user_index(users)]

    def features():
        return [candidate_rows(store, engine, merged, users[i : i + chunk], u_starts[i : i + chunk])
                for i in range(0, users.size, chunk)]

    features_s, tables = best(features, r) if task["batches"] else (None, [])
    builder = checkpoint.builder(store)
    by_batch = {}
    for batch in task["batches"]:  # score_table's default (2048, what rerank uses) and others
        score_s, _ = best(lambda b=batch: [score_table(checkpoint, builder, t, b) for t in tables], r)

        def build_only(b=batch):
            for t in tables:
                for i in range(0, t.num_rows, b):
                    builder(t.slice(i, b), group_histories=True)

        builder_s, _ = best(build_only, r)
        by_batch[str(batch)] = {"score_table_s": round(score_s, 3), "score_table_per_s": round(rows_n / score_s, 1),
                                "builder_s": round(builder_s, 3), "builder_per_s": round(rows_n / builder_s, 1),
                                "model_only_per_s": round(rows_n / max(score_s - builder_s, 1e-9), 1)}
    return {"threads": task["threads"] or torch.get_num_threads(), "users": int(users.size),
            "candidates": rows_n, "users_per_chunk": chunk,
            "merged_rows_total": merged.num_rows, "channels": list(channels), "warmup_s": round(warmup_s, 2),
            "rerank_s": round(rerank_s, 3), "rerank_per_s": round(rows_n / rerank_s, 1),
            "workers": task["workers"], "features_s": features_s and round(features_s, 3),
            "features_per_s": features_s and round(rows_n / features_s, 1),
            "score_table": by_batch, **s["info"], **_usage()}


# ---------------------------------------------------------------------------------------------- parent


def _spawn(task: dict, log: Path) -> tuple[subprocess.Popen, Path]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(task)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
    return proc, log


def _collect(proc: subprocess.Popen, log: Path) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (rc {proc.returncode}), {log}:\n{log.read_text()[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _run(task: dict, log: Path) -> dict:
    t0 = time.perf_counter()
    res = _collect(*_spawn(task, log))
    res["process_s"] = round(time.perf_counter() - t0, 1)
    return res


def _mem(r: dict) -> str:
    timed = "?" if r.get("timed_peak_rss_mb") is None else f"{r['timed_peak_rss_mb']:,.0f}"
    if r.get("rss_before_timed_mb") is not None:
        timed += f" (from {r['rss_before_timed_mb']:,.0f})"
    worker = f", worker {r['worker_peak_rss_mb']:,.0f}" if r.get("worker_peak_rss_mb") else ""
    return f"{r['peak_rss_mb']:,.0f} / {timed}{worker}"


def _setting(text: str) -> tuple[int, int]:
    threads, workers = text.lower().split("x")
    return int(threads), int(workers)


def main() -> None:
    from movielens_assets.core.ranking.trainer import ABLATIONS

    variants = ["full", *(a for a in ABLATIONS if a != "full_same_budget")]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1m", help="synthetic size prepared by ranking_samples.py")
    parser.add_argument("--prepared-dir", type=Path, default=Path("/tmp/bench_ranking"),
                        help="ranking_samples.py's --work-dir (its <size>/ is reused)")
    parser.add_argument("--seed", type=int, default=42, help="dataset seed (as ranking_samples.py)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_ranker"))
    parser.add_argument("--samples-dir", type=Path, default=None, help="default: <work-dir>/<size>/samples")
    parser.add_argument("--shards", type=int, default=16, help="user shards of the partitioning")
    parser.add_argument("--build-shards", type=int, default=0, help="build only the first N shards (0: all)")
    parser.add_argument("--shard-workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=["loader", "train", "score"], choices=["loader", "train", "score"])
    parser.add_argument("--settings", nargs="+", default=["1x1", "2x0"],
                        help="THREADSxWORKERS: torch threads x DataLoader workers (asset default 2x0)")
    parser.add_argument("--variants", nargs="+", default=variants, choices=variants)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--extra-batch", type=int, nargs="*", default=[2048], help="extra batch sizes, full model")
    parser.add_argument("--train-rows", type=int, default=300_000)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--loader-rows", type=int, default=1_000_000)
    parser.add_argument("--loader-workers", type=int, nargs="*", default=[1], help="DataLoader worker counts")
    parser.add_argument("--normalizer-rows", type=int, default=500_000, help="TrainConfig.normalizer_rows")
    parser.add_argument("--score-users", type=int, default=4000, help="users re-ranked (~200 candidates each)")
    parser.add_argument("--score-workers", type=int, nargs="+", default=[1, 2],
                        help="rerank worker processes (one torch thread each when > 1; the asset: one per core)")
    parser.add_argument("--score-threads", type=int, nargs="+", default=[1],
                        help="torch threads of the 1-worker runs (0: torch's default)")
    parser.add_argument("--users-per-chunk", type=int, default=1000, help="rerank's (the asset's default)")
    parser.add_argument("--score-repeat", type=int, default=1, help="rounds per scoring measurement (best)")
    parser.add_argument("--score-batches", type=int, nargs="+", default=[2048],
                        help="score_table batch sizes timed (2048: its default, what rerank uses)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        task = json.loads(args.child)
        fn = {"shard": _shard_child, "loader": _loader_child, "train": _train_child, "score": _score_child}
        print(json.dumps(fn[task["kind"]](task)))
        return

    args.work_dir = args.work_dir.resolve()
    if args.samples_dir is None:
        args.samples_dir = args.work_dir / args.size / "samples"
    started = time.strftime("%Y%m%d-%H%M%S")
    results: dict = {"command": "python benchmarks/ranker.py " + " ".join(sys.argv[1:]), "started": started,
                     "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "size": args.size,
                     "args": {k: v if isinstance(v, int | float | str | list | None) else str(v)
                              for k, v in vars(args).items()}}
    results["inputs"] = ensure_inputs(args)
    common = {"prepared": str(args.prepared_dir.resolve()), "size": args.size, "samples": str(args.samples_dir),
              "normalizer_rows": args.normalizer_rows, "seed": 0}
    logs = args.work_dir / "logs"

    if "loader" in args.only:
        print(f"\n== loader alone: batch {args.batch_size}, role train, {args.loader_rows:,} rows", flush=True)
        rows = []
        for workers in [None, *args.loader_workers]:
            task = {**common, "kind": "loader", "batch_size": args.batch_size, "rows": args.loader_rows,
                    "workers": workers}
            rows.append(_run(task, logs / f"loader-{workers}.log"))
            print(f"   {rows[-1]['mode']}: {rows[-1]['samples_per_s']:,.0f} samples/s", flush=True)
        results["loader"] = rows
        print("\n| loader | batch | samples | s | samples/s | batches/s | after 1st batch | 1st batch s | "
              "BatchBuilder share | CPU s / wall s | peak RSS MB: process / timed part (from), worker |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            share = "-" if r["builder_share"] is None else f"{r['builder_share']:.0%}"
            print(f"| {r['mode']} | {r['batch_size']} | {r['samples']:,} | {r['seconds']:.1f} | "
                  f"{r['samples_per_s']:,.0f} | {r['batches_per_s']:.1f} | {r['samples_per_s_after_first']:,.0f} | "
                  f"{r['first_batch_s']:.2f} | {share} | {r['cpu_per_wall']:.2f} | {_mem(r)} |")

    if "train" in args.only:
        runs = [(st, v, args.batch_size) for st in args.settings for v in args.variants]
        runs += [(st, "full", b) for st in args.settings for b in args.extra_batch if "full" in args.variants]
        print(f"\n== training: {len(runs)} runs of {args.train_rows:,} rows each, steady state after "
              f"{args.warmup_steps} steps", flush=True)
        rows = []
        for st, variant, batch in runs:
            threads, workers = _setting(st)
            task = {**common, "kind": "train", "variant": variant, "batch_size": batch, "threads": threads,
                    "workers": workers, "rows": args.train_rows, "warmup_steps": args.warmup_steps}
            rows.append(_run(task, logs / f"train-{st}-{variant}-{batch}.log"))
            print(f"   {st} {variant} b{batch}: {rows[-1]['samples_per_s']:,.0f} samples/s", flush=True)
        results["train"] = rows
        print("\n| threads x workers | variant | batch | samples/s (steady) | per main CPU-s | whole loop | vs 20k | "
              "data wait | ms/step: wait / fwd+loss / bwd / dense / sparse | setup s | warm-up s | "
              "peak RSS MB: process / timed part (from), worker | params dense + sparse |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            ms = " / ".join(f"{v:.1f}" for v in r["ms_per_step"].values())
            print(f"| {r['threads']}x{r['workers']} | {r['variant']} | {r['batch_size']} | "
                  f"**{r['samples_per_s']:,.0f}** | {r['samples_per_cpu_s']:,.0f} | {r['samples_per_s_all']:,.0f} | "
                  f"{r['samples_per_s'] / TARGET_TRAIN:.2f}x | {r['data_wait_share']:.0%} | {ms} | "
                  f"{r['setup_s']:.1f} | {r['warmup_s']:.1f} | {_mem(r)} | "
                  f"{r['params_dense']:,} + {r['params_sparse']:,} |")

    if "score" in args.only:
        print(f"\n== scoring: rerank() of the first {args.score_users:,} users' merged lists", flush=True)
        rows = []
        settings = [(w, t) for w in args.score_workers for t in (args.score_threads if w == 1 else [1])]
        for workers, threads in settings:
            task = {**common, "kind": "score", "threads": threads, "workers": workers, "users": args.score_users,
                    "users_per_chunk": args.users_per_chunk, "repeat": args.score_repeat,
                    "batches": args.score_batches if workers == 1 else []}
            rows.append(_run(task, logs / f"score-{workers}x{threads}.log"))
            print(f"   {workers} worker(s) x {rows[-1]['threads']} thread(s): {rows[-1]['rerank_per_s']:,.0f} "
                  "candidates/s", flush=True)
        results["score"] = rows
        print("\n| workers x threads | users | candidates | rerank cand/s | vs 200k | candidate_rows cand/s | "
              "score_table cand/s (BatchBuilder / model only) by batch | peak RSS MB: process / timed part (from) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            by_batch = "; ".join(f"{b}: {x['score_table_per_s']:,.0f} ({x['builder_per_s']:,.0f} / "
                                 f"{x['model_only_per_s']:,.0f})" for b, x in r["score_table"].items()) or "-"
            features = f"{r['features_per_s']:,.0f}" if r["features_per_s"] else "-"
            print(f"| {r['workers']}x{r['threads']} | {r['users']:,} | {r['candidates']:,} | "
                  f"**{r['rerank_per_s']:,.0f}** | {r['rerank_per_s'] / TARGET_SCORE:.2f}x | {features} | {by_batch} | "
                  f"{_mem(r)} |")

    summary = _summary(results, args)
    results["summary"] = summary
    results["loadavg_after"] = os.getloadavg()
    out = args.work_dir / f"results_{args.size}_{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nmachine: {os.cpu_count()} cores, load average {results['loadavg_before'][0]:.2f} before, "
          f"{results['loadavg_after'][0]:.2f} after (other processes slow every wall-clock rate)\nresults: {out}\n"
          f"command: {results['command']}")


def _score_min(r: dict) -> str:
    return ", ".join(f"score_table batch {b} {CANDIDATES_32M / x['score_table_per_s'] / 60:.1f} min"
                     for b, x in r["score_table"].items())


def _summary(results: dict, args) -> dict:
    """Loader / model ratios and the extrapolations (printed, and returned for the JSON)."""
    out: dict = {}
    full = [r for r in results.get("train", []) if r["variant"] == "full" and r["batch_size"] == args.batch_size]
    loader = {("in-process" if r["workers"] is None else f"{r['workers']} worker(s)"): r["samples_per_s"]
              for r in results.get("loader", [])}
    if full and loader:
        print(f"\n### Loader vs model (full model, batch {args.batch_size}; target: loader >= "
              f"{TARGET_LOADER_RATIO:.0f}x the model)\n")
        print("| threads x workers | model samples/s | " + " | ".join(f"loader {k} / model" for k in loader)
              + " | waiting for data in training |")
        print("|---|---|" + "---|" * len(loader) + "---|")
        for r in full:
            ratios = {k: v / r["samples_per_s"] for k, v in loader.items()}
            out.setdefault("loader_ratio", {})[f"{r['threads']}x{r['workers']}"] = ratios
            cells = " | ".join(f"{x:.1f}x {'ok' if x >= TARGET_LOADER_RATIO else 'BELOW'}" for x in ratios.values())
            print(f"| {r['threads']}x{r['workers']} | {r['samples_per_s']:,.0f} | {cells} | "
                  f"{r['data_wait_share']:.0%} |")
    if full:
        print("\n### Extrapolations (from the rates above, NOT measured at 32M)\n")
        for r in full:
            rate = r["samples_per_s"]
            key = f"{r['threads']}x{r['workers']}"
            out.setdefault("epoch_32m_h", {})[key] = EPOCH_32M / rate / 3600
            out.setdefault("asset_budget_min", {})[key] = ASSET_BUDGET_ROWS / rate / 60
            print(f"- {key}: one ML-32M epoch (~{EPOCH_32M / 1e6:.0f}M samples) at {rate:,.0f} samples/s = "
                  f"**{EPOCH_32M / rate / 3600:.1f} h** (extrapolated); the asset's default budget "
                  f"(at most {ASSET_BUDGET_ROWS / 1e6:.0f}M rows: 8 x 2M full + 5 ablations x 4 x 2M) = "
                  f"{ASSET_BUDGET_ROWS / rate / 60:.0f} min of training steps (validation excluded); "
                  f"target {TARGET_TRAIN:,}/s: {'met' if rate >= TARGET_TRAIN else 'NOT met'}")
    for r in results.get("score", []):
        key = f"{r['workers']} worker(s) x {r['threads']} thread(s)"
        out.setdefault("score_40m_min", {})[key] = CANDIDATES_32M / r["rerank_per_s"] / 60
        if not full and r is results["score"][0]:
            print("\n### Extrapolations (from the rates above, NOT measured at 32M)\n")
        parts = (f"; features {CANDIDATES_32M / r['features_per_s'] / 60:.1f} min, {_score_min(r)}"
                 if r["features_per_s"] else "")
        print(f"- scoring {key}: {CANDIDATES_32M / 1e6:.0f}M candidates (200k users x 200) at "
              f"{r['rerank_per_s']:,.0f}/s end to end = **{CANDIDATES_32M / r['rerank_per_s'] / 60:.1f} min** "
              f"(extrapolated{parts}); target {TARGET_SCORE:,}/s: "
              f"{'met' if r['rerank_per_s'] >= TARGET_SCORE else 'NOT met'}")
    return out


if __name__ == "__main__":
    main()
