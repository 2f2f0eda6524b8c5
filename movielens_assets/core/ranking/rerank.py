"""Re-ranking a recall stage's candidates with the ranker: the rows the ranker scores where it is used.

For every user of a recall stage (last_n's test users: their merged top-200 list), each candidate becomes a
sample-like row — cut-off = the user's test start, `seq_pos` = the user's source rows before it, the same
point-in-time features as the training samples, the recall features from the stage's merged list — built a
chunk of users at a time. `rerank` scores them (checkpoint) and orders each user's list by the ranker, chunks
in parallel worker processes from a fork server (one torch thread each).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.ranking.features import RankingFeatureEngine
from movielens_assets.core.ranking.samples import CandidateLists
from movielens_assets.core.ranking.sequences import NO_TIME, SequenceStore

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from movielens_assets.core.ranking.trainer import RankerCheckpoint


def candidate_rows(store: SequenceStore, engine: RankingFeatureEngine, merged: pa.Table, users: np.ndarray,
                   cutoffs: np.ndarray) -> pa.Table:
    """Feature rows of the merged candidates of `users` (raw ids, store users) at `cutoffs` (one per user):
    user_id, movie_id, seq_pos, cutoff_ts, merged_rank, channels, then the engine's feature columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    users = np.asarray(users, dtype=np.int64)
    positions = store.user_index(users)
    if (positions < 0).any():
        raise ValueError(f"user {users[positions < 0][0]} has no source rows in the sequence store")
    order = np.argsort(positions)
    positions, users, cutoffs = positions[order], users[order], np.asarray(cutoffs, dtype=np.int64)[order]
    cand = merged.filter(pc.is_in(merged["user_id"], pa.array(users.astype(np.int32))))
    lists = CandidateLists.from_table(cand, engine.channels)
    c_user = cand.column("user_id").to_numpy().astype(np.int64)
    c_movie = cand.column("movie_id").to_numpy().astype(np.int64)
    local = np.searchsorted(users, c_user)
    chunk = engine.chunk(store, positions)
    cut = cutoffs[local]
    _, values = lists.lookup(c_user, c_movie)
    features = engine.compute(chunk, local, c_movie, cut, values)
    return pa.table({
        "user_id": c_user.astype(np.int32), "movie_id": c_movie.astype(np.int32),
        "seq_pos": chunk.seq_pos(local, cut).astype(np.int32), "cutoff_ts": cut,
        "merged_rank": cand.column("rank"), "channels": cand.column("channels"), **features})


def rerank(checkpoints: Mapping[str, RankerCheckpoint], store: SequenceStore, engine: RankingFeatureEngine,
           merged: pa.Table, users: np.ndarray, *, users_per_chunk: int = 1_000, workers: int | None = 1,
           num_threads: int | None = 1, progress: Callable[[str], None] | None = None) -> dict[str, pa.Table]:
    """Every candidate of `users` (raw ids with a test start in the store) scored by each checkpoint (the
    feature rows are built once per chunk of users and shared): {name: table of user_id, movie_id, rank
    (1 = the ranker's best; ties by the merged rank), merged_rank, channels, p_<task>}, sorted by user, rank.

    `workers` processes score chunks in parallel (None: one per CPU core; 1: in this process), each with ONE
    torch thread (the model's small matrices gain little from intra-op threads, the features none at all).
    Workers come from a fork SERVER (a clean single-threaded process that imported torch once), never from a
    fork of this process (a fork of a process whose thread pools — OpenMP, numba, Arrow — are running can
    deadlock; a test suite did): each receives the checkpoints and the memory-mapped store and item index once
    (they pickle as their directories: the workers map the same files) and, per chunk, only that chunk's
    candidate rows. `num_threads`: torch threads when `workers` is 1."""
    import multiprocessing as mp

    import pyarrow as pa

    say = progress or (lambda _msg: None)
    users = np.asarray(users, dtype=np.int64)
    starts = np.asarray(store.test_start)[store.user_index(users)]
    if (starts == NO_TIME).any():
        raise ValueError(f"user {users[starts == NO_TIME][0]} has no test start")
    bounds = [(s, min(s + users_per_chunk, users.size)) for s in range(0, users.size, users_per_chunk)]
    workers = min(workers or os.cpu_count() or 1, len(bounds))
    job = _RerankJob(dict(checkpoints), store, engine)
    parts: dict[str, list[pa.Table]] = {name: [] for name in checkpoints}
    tasks = ((users[lo:hi], starts[lo:hi], _rows_of(merged, users[lo:hi])) for lo, hi in bounds)
    pool = None
    results: Iterator[dict[str, pa.Table]]
    if workers <= 1:
        results = (job.run(*task, num_threads) for task in tasks)
    else:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "movielens_assets.core.ranking.rerank"])  # imported once, not per worker
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(job,))
        results = pool.imap(_run_in_worker, tasks)
    try:
        for (_, stop), scored in zip(bounds, results, strict=True):
            for name, table in scored.items():
                parts[name].append(table)
            say(f"re-ranked {stop:,}/{users.size:,} users")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return {name: pa.concat_tables(tables) for name, tables in parts.items() if tables}


def _rows_of(merged: pa.Table, users: np.ndarray) -> pa.Table:
    """The rows of `merged` whose user_id is in `users`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return merged.filter(pc.is_in(merged["user_id"], pa.array(np.asarray(users).astype(np.int32))))


class _RerankJob:
    """The inputs of one `rerank` call shared by every chunk, and the work on one chunk of its users."""

    def __init__(self, checkpoints: dict, store: SequenceStore, engine: RankingFeatureEngine):
        self.checkpoints, self.store, self.engine = checkpoints, store, engine

    def run(self, users: np.ndarray, starts: np.ndarray, merged: pa.Table, num_threads: int | None
            ) -> dict[str, pa.Table]:
        import pyarrow as pa

        from movielens_assets.core.ranking.trainer import score_table, torch_threads

        rows = candidate_rows(self.store, self.engine, merged, users, starts)
        u = rows.column("user_id").to_numpy()
        out = {}
        for name, checkpoint in self.checkpoints.items():
            with torch_threads(num_threads):
                scores = score_table(checkpoint, checkpoint.builder(self.store), rows)
            order = np.lexsort((rows.column("merged_rank").to_numpy(), -scores["watch"], u))
            ranked_users = u[order]
            rank = np.arange(order.size) - np.searchsorted(ranked_users, ranked_users, side="left") + 1
            take = pa.array(order)
            cols = {"user_id": rows.column("user_id").take(take), "movie_id": rows.column("movie_id").take(take),
                    "rank": pa.array(rank.astype(np.int32)), "merged_rank": rows.column("merged_rank").take(take),
                    "channels": rows.column("channels").take(take)}
            cols.update({f"p_{t}": pa.array(v[order].astype(np.float32)) for t, v in scores.items()})
            out[name] = pa.table(cols)
        return out


_JOB: _RerankJob | None = None


def _init_worker(job: _RerankJob) -> None:
    import torch

    global _JOB
    torch.set_num_threads(1)
    _JOB = job


def _run_in_worker(task: tuple[np.ndarray, np.ndarray, pa.Table]) -> dict[str, pa.Table]:
    if _JOB is None:
        raise RuntimeError("rerank worker not initialised")
    return _JOB.run(*task, None)
