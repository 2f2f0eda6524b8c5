"""The point-in-time primitive: counts and sums of a key's events STRICTLY BEFORE a time, vectorised.

Every point-in-time feature of the ranking samples is one of these queries: an item's ratings before a
sample's cut-off (key = movie), a user's history before it (key = user), the liked movies of the user's by
a director (key = (user, director)). Events are sorted once by (key, time) into one int64 array of
`key rank << 32 | (time - t0)`; a query is one `searchsorted` call and a gather of a prefix sum, so millions
of queries cost seconds and no Python loop runs per row. Equal times are not "before" each
other (`time < t`, strictly): ratings given in the same second as the cut-off are never seen.

Times are integer seconds; their range (events and the epoch offset) must fit 32 bits (136 years).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

_TIME_BITS = 32
_TIME_MAX = (1 << _TIME_BITS) - 1


def locality_order(values: np.ndarray) -> np.ndarray:
    """A permutation that puts non-negative int64 `values` in ascending order, up to their low bits: what a
    batch of searches needs to walk a large sorted array in order (the result of each search does not depend
    on the order). Each value (shifted right as far as needed) and its index are packed into one int64, and the
    packed keys go through `np.sort` (SIMD, faster than an `argsort` of the values; docs/BENCHMARKS.md,
    "Ranking samples"): exactly sorted when
    the value's and the index's bits fit 63 together, otherwise sorted up to the bits shifted away."""
    values = np.asarray(values, dtype=np.int64)
    n = values.size
    if n < 2:
        return np.arange(n, dtype=np.int64)
    idx_bits = (n - 1).bit_length()
    shift = max(0, int(values.max()).bit_length() + idx_bits - 63)
    packed = ((values >> shift) << idx_bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << idx_bits) - 1
    return packed


class AsOfIndex:
    """Events (key, time, values) answering `count_before(keys, times)` and `sums_before(...)`.

    `values` maps a name to an array with one row per event (1-d, or 2-d for vectors such as genre shares).
    Their prefix sums restart at every key (`local[i]`: the sum over the key's events before event i) and are
    stored as float32, with each key's total in float64 for queries after its last event: half the bytes of
    one global float64 prefix sum (the item index is memory-mapped by every shard process and read at random:
    its pages are what a process holds), and no cancellation, as a sum is read, never a difference of two
    large ones. Exact while a key's sums stay below 2^24 units of the values' resolution (half-star ratings:
    8.4M per key, their squares 4.2M); beyond that, within float32's relative 6e-8."""

    FORMAT = 2  # on-disk layout (1: global float64 prefix sums, no longer read)

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: dict[str, np.ndarray] | None = None):
        self._mapped_from: str | None = None  # the directory of a memory-mapped index (`load`), for pickling
        keys = np.asarray(keys, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        if keys.shape != times.shape or keys.ndim != 1:
            raise ValueError(f"keys and times must be 1-d of one length, got {keys.shape} and {times.shape}")
        order = np.lexsort((times, keys))
        keys, times = keys[order], times[order]
        self.t0 = int(times.min()) if times.size else 0
        if times.size and int(times.max()) - self.t0 >= _TIME_MAX:
            raise ValueError("event times span more than 2^32 - 1 seconds")
        self.uniq, self.starts = np.unique(keys, return_index=True)
        self.starts = self.starts.astype(np.int64)
        counts = np.diff(np.append(self.starts, keys.size))  # events per key
        rank = np.repeat(np.arange(self.uniq.size, dtype=np.int64), counts)
        self.composite = (rank << _TIME_BITS) | (times - self.t0)
        self.first_time = times[self.starts] if times.size else np.zeros(0, np.int64)
        del rank, times
        self.local: dict[str, np.ndarray] = {}
        self.total: dict[str, np.ndarray] = {}
        for name, v in (values or {}).items():
            v = np.asarray(v)
            if v.shape[0] != keys.size:
                raise ValueError(f"values {name!r} have {v.shape[0]} rows for {keys.size} events")
            v = np.asarray(v[order], dtype=np.float64)
            total = np.add.reduceat(v, self.starts, axis=0) if keys.size else np.zeros((0, *v.shape[1:]))
            cum = np.cumsum(v, axis=0)
            cum -= v  # exclusive: the sum before each event
            cum -= np.repeat(cum[self.starts], counts, axis=0)  # restarted at each key's first event
            self.local[name] = cum.astype(np.float32)
            self.total[name] = total
            del v, cum

    @property
    def n_events(self) -> int:
        return int(self.composite.size)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rank, found) of each key: its position among the index's keys (clipped) and whether it is there.
        Reuse it across several times (`count_at`, `sums_at`) to search the keys once."""
        keys = np.asarray(keys, dtype=np.int64)
        rank = np.searchsorted(self.uniq, keys)
        rank_c = np.minimum(rank, max(self.uniq.size - 1, 0))
        found = (rank < self.uniq.size) & (self.uniq[rank_c] == keys) if self.uniq.size else np.zeros(keys.shape, bool)
        return rank_c, found

    def _positions(self, rank: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Position of the first event at or after each time within its key. The queries are searched in
        sorted order (cache-friendly on a large index: faster than in random order; docs/BENCHMARKS.md,
        "Ranking samples"), then put back."""
        offset = np.clip(np.asarray(times, dtype=np.int64) - self.t0, 0, _TIME_MAX)
        query = (rank << _TIME_BITS) | offset
        order = locality_order(query)
        pos = np.empty(query.size, dtype=np.int64)
        pos[order] = np.searchsorted(self.composite, query[order], side="left")
        return pos

    def _starts(self, rank: np.ndarray) -> np.ndarray:
        return self.starts[rank] if self.uniq.size else np.zeros(rank.shape, np.int64)

    def count_at(self, rank: np.ndarray, found: np.ndarray, times: np.ndarray) -> np.ndarray:
        """`count_before` for keys already looked up (`lookup`)."""
        return np.where(found, self._positions(rank, times) - self._starts(rank), 0).astype(np.int64)

    def sums_at(self, rank: np.ndarray, found: np.ndarray, times: np.ndarray, names: list[str] | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`sums_before` for keys already looked up (`lookup`)."""
        pos = self._positions(rank, times)
        start = self._starts(rank)
        count = np.where(found, pos - start, 0).astype(np.int64)
        n = self.n_events
        # pos is the first event at or after the time: inside the key's run, its local prefix is the sum
        # before it; at the run's end (every event before the time), the key's total
        n_keys = self.uniq.size
        ends = np.where(rank + 1 < n_keys, self.starts[np.minimum(rank + 1, max(n_keys - 1, 0))], n) if n_keys \
            else np.zeros(rank.shape, np.int64)
        inside = found & (pos < ends)
        after = found & ~inside
        out = {}
        for name in names if names is not None else list(self.local):
            local, total = self.local[name], self.total[name]
            s = np.zeros((rank.size, *local.shape[1:]), dtype=np.float64)
            s[inside] = local[pos[inside]]
            s[after] = total[rank[after]]
            out[name] = s
        return count, out

    def count_before(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Number of events of each key with time < the query's time (0 for unknown keys), int64."""
        return self.count_at(*self.lookup(keys), times)

    def sums_before(self, keys: np.ndarray, times: np.ndarray, names: list[str] | None = None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(count, {name: sum of the values}) over each key's events with time < the query's time."""
        return self.sums_at(*self.lookup(keys), times, names)

    def first_time_at(self, rank: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Time of each looked-up key's first event (int64; the int64 maximum for unknown keys)."""
        return np.where(found, self.first_time[rank] if self.uniq.size else 0, np.iinfo(np.int64).max)

    def first_time_of(self, keys: np.ndarray) -> np.ndarray:
        """Time of each key's first event (int64; the int64 maximum for unknown keys)."""
        return self.first_time_at(*self.lookup(keys))

    # ---- persistence: one directory of .npy files, memory-mapped on load (shared by shard processes)
    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index into `directory` atomically."""
        from movielens_assets.core.data.atomic import atomic_path

        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            for name in ("uniq", "starts", "composite", "first_time"):
                np.save(tmp / f"{name}.npy", getattr(self, name))
            for name in self.local:
                np.save(tmp / f"local_{name}.npy", self.local[name])
                np.save(tmp / f"total_{name}.npy", self.total[name])
            (tmp / "meta.json").write_text(json.dumps({"format": self.FORMAT, "t0": self.t0,
                                                       "values": list(self.local)}))

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> AsOfIndex:
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != cls.FORMAT:
            raise ValueError(f"{directory}: point-in-time index format {meta.get('format', 1)}, this code reads "
                             f"format {cls.FORMAT}; materialize the asset that wrote it (item_profile) again")
        mode: Literal["r"] | None = "r" if mmap else None
        self = cls.__new__(cls)
        self.t0 = int(meta["t0"])
        for name in ("uniq", "starts", "composite", "first_time"):
            setattr(self, name, np.load(directory / f"{name}.npy", mmap_mode=mode))
        self.local = {name: np.load(directory / f"local_{name}.npy", mmap_mode=mode) for name in meta["values"]}
        self.total = {name: np.load(directory / f"total_{name}.npy") for name in meta["values"]}
        self._mapped_from = str(directory) if mmap else None
        return self

    def __reduce__(self):
        """A memory-mapped index pickles as its directory (a worker process maps the same files instead of
        receiving a copy); an in-memory one as its state."""
        source = getattr(self, "_mapped_from", None)
        if source is not None:
            return (AsOfIndex.load, (source,))
        return (_from_state, (self.__dict__,))


def _from_state(state: dict) -> AsOfIndex:
    index = AsOfIndex.__new__(AsOfIndex)
    index.__dict__.update(state)
    return index
