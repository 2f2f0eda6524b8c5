"""Re-ranking a recall stage's candidates with the ranker: the rows the ranker scores where it is used.

For every user of a recall stage (last_n's test users: their merged top-200 list), each candidate becomes a
sample-like row — cut-off = the user's test start, `seq_pos` = the user's source rows before it, the same
point-in-time features as the training samples, the recall features from the stage's merged list — built a
chunk of users at a time. `rerank` scores them (checkpoint) and orders each user's list by the ranker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
           merged: pa.Table, users: np.ndarray, *, users_per_chunk: int = 5_000, num_threads: int | None = 1,
           progress: Callable[[str], None] | None = None) -> dict[str, pa.Table]:
    """Every candidate of `users` (raw ids with a test start in the store) scored by each checkpoint (the
    feature rows are built once per chunk of users and shared): {name: table of user_id, movie_id, rank
    (1 = the ranker's best; ties by the merged rank), merged_rank, channels, p_<task>}, sorted by user, rank.
    `num_threads`: torch threads while scoring (1: on a shared 2-core machine more threads measured slower)."""
    import pyarrow as pa

    from movielens_assets.core.ranking.trainer import score_table, torch_threads

    say = progress or (lambda _msg: None)
    users = np.asarray(users, dtype=np.int64)
    starts = np.asarray(store.test_start)[store.user_index(users)]
    if (starts == NO_TIME).any():
        raise ValueError(f"user {users[starts == NO_TIME][0]} has no test start")
    builders = {name: ck.builder(store) for name, ck in checkpoints.items()}
    parts: dict[str, list[pa.Table]] = {name: [] for name in checkpoints}
    for s in range(0, users.size, users_per_chunk):
        rows = candidate_rows(store, engine, merged, users[s : s + users_per_chunk], starts[s : s + users_per_chunk])
        u = rows.column("user_id").to_numpy()
        for name, checkpoint in checkpoints.items():
            with torch_threads(num_threads):
                scores = score_table(checkpoint, builders[name], rows)
            order = np.lexsort((rows.column("merged_rank").to_numpy(), -scores["watch"], u))
            ranked_users = u[order]
            rank = np.arange(order.size) - np.searchsorted(ranked_users, ranked_users, side="left") + 1
            take = pa.array(order)
            cols = {"user_id": rows.column("user_id").take(take), "movie_id": rows.column("movie_id").take(take),
                    "rank": pa.array(rank.astype(np.int32)), "merged_rank": rows.column("merged_rank").take(take),
                    "channels": rows.column("channels").take(take)}
            cols.update({f"p_{t}": pa.array(v[order].astype(np.float32)) for t, v in scores.items()})
            parts[name].append(pa.table(cols))
        say(f"re-ranked {min(s + users_per_chunk, users.size):,}/{users.size:,} users")
    return {name: pa.concat_tables(tables) for name, tables in parts.items() if tables}
