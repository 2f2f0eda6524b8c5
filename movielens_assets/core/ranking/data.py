"""From sample rows to model batches: vocabularies, per-item tables, feature normalisation, history windows.

- `RankingVocab`: raw ids -> embedding indices (0 = unknown) for users (the sequence store's users), items
  (the item table), genres, directors and cast (people of the item table), and release-year buckets (deciles
  of the catalogue's years). Built from the training inputs, saved with the model.
- `Normalizer`: per dense feature a median / scale fitted on TRAINING rows only (robust: the interquartile
  range, so ranks, counts and days need no hand-made transform), clipped to +-5; NaN ("absent") becomes 0
  plus a missing-indicator column for every feature that was ever absent in training. Saved with the model:
  serving transforms exactly as training did.
- `BatchBuilder`: an Arrow table of sample rows -> the model's input dict (`core/ranking/model.py`), the
  history gathered from the sequence store by (user, seq_pos) — right-aligned, last `history_len` rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movielens_assets.core.ranking.features import DAY
from movielens_assets.core.ranking.profiles import ItemFeatures
from movielens_assets.core.ranking.sequences import SequenceStore

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

N_YEAR_BUCKETS = 10
CLIP = 5.0


def _index(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """1-based positions of raw ids in `sorted_ids`; 0 for ids not there (and for negative ids: padding)."""
    raw = np.asarray(raw, dtype=np.int64)
    n = sorted_ids.size
    pos = np.searchsorted(sorted_ids, raw)
    pos_c = np.minimum(pos, max(n - 1, 0))
    ok = (pos < n) & (sorted_ids[pos_c] == raw) & (raw >= 0) if n else np.zeros(raw.shape, bool)
    return np.where(ok, pos_c + 1, 0).astype(np.int64)


MAX_DENSE_ID = 50_000_000


def _lookup_table(sorted_ids: np.ndarray) -> np.ndarray | None:
    """raw id -> 1-based index as a direct array (0 = unknown), when the ids are small enough (MovieLens user
    and movie ids are below 400k): one gather per id instead of a binary search — the history of a batch is
    50 ids per row."""
    if sorted_ids.size == 0 or int(sorted_ids[-1]) >= MAX_DENSE_ID or int(sorted_ids[0]) < 0:
        return None
    table = np.zeros(int(sorted_ids[-1]) + 2, dtype=np.int64)  # the last slot: every id above the maximum
    table[sorted_ids] = np.arange(1, sorted_ids.size + 1)
    return table


def _indices(sorted_ids: np.ndarray, table: np.ndarray | None, raw: np.ndarray) -> np.ndarray:
    if table is None:
        return _index(sorted_ids, raw)
    raw = np.asarray(raw, dtype=np.int64)
    return np.where(raw >= 0, table[np.clip(raw, 0, table.size - 1)], 0)


@dataclass(frozen=True)
class RankingVocab:
    user_ids: np.ndarray  # int64 sorted raw user ids
    movie_ids: np.ndarray  # int64 sorted raw movie ids
    genres: tuple[str, ...]
    directors: np.ndarray  # int64 sorted TMDb person ids
    cast: np.ndarray  # int64 sorted TMDb person ids
    year_edges: np.ndarray  # float64 inner bucket edges

    @classmethod
    def build(cls, store: SequenceStore, items: ItemFeatures) -> RankingVocab:
        years = items.year[np.isfinite(items.year)]
        edges = (np.unique(np.quantile(years, np.arange(1, N_YEAR_BUCKETS) / N_YEAR_BUCKETS)) if years.size
                 else np.zeros(0))
        return cls(np.asarray(store.user_ids, dtype=np.int64), np.asarray(items.movie_ids, dtype=np.int64),
                   tuple(items.genres), np.unique(items.directors[items.directors >= 0]),
                   np.unique(items.top_cast[items.top_cast >= 0]), edges)

    @property
    def sizes(self) -> dict[str, int]:
        """Vocabulary sizes including index 0 (unknown / padding)."""
        return {"users": self.user_ids.size + 1, "items": self.movie_ids.size + 1, "genres": len(self.genres) + 1,
                "directors": self.directors.size + 1, "cast": self.cast.size + 1,
                "year_buckets": self.year_edges.size + 2}

    @cached_property
    def _user_table(self) -> np.ndarray | None:
        return _lookup_table(self.user_ids)

    @cached_property
    def _item_table(self) -> np.ndarray | None:
        return _lookup_table(self.movie_ids)

    def user_index(self, raw: np.ndarray) -> np.ndarray:
        """1-based vocabulary index of raw user ids; 0 for users not in the vocabulary."""
        return _indices(self.user_ids, self._user_table, raw)

    def item_index(self, raw: np.ndarray) -> np.ndarray:
        """1-based vocabulary index of raw movie ids; 0 for unknown movies and for padding (negative ids)."""
        return _indices(self.movie_ids, self._item_table, raw)

    def item_tables(self, items: ItemFeatures) -> dict[str, np.ndarray | None]:
        """Per-item side tables indexed by item vocabulary index (row 0 = unknown): genre indices (padded 0),
        directors, top cast, year bucket (0 = unknown), semantic vectors + mask (None without embeddings;
        directors / cast None without TMDb data)."""
        n = self.movie_ids.size + 1
        rows = 1 + np.searchsorted(self.movie_ids, items.movie_ids)  # the item table IS the vocabulary here
        g_max = max(1, int((items.genre_share > 0).sum(axis=1).max(initial=0)))
        genres = np.zeros((n, g_max), np.int64)
        r, c = np.nonzero(items.genre_share > 0)
        slot = np.arange(r.size) - np.searchsorted(r, r, side="left")
        genres[rows[r], slot] = c + 1
        year = np.zeros(n, np.int64)
        known = np.isfinite(items.year)
        year[rows[known]] = 1 + np.searchsorted(self.year_edges, items.year[known], side="right")
        out: dict[str, np.ndarray | None] = {"genres": genres, "year_bucket": year, "directors": None, "cast": None,
                                             "semantic": None, "semantic_mask": None}
        if items.has_tmdb_data:
            directors = np.zeros((n, items.directors.shape[1]), np.int64)
            directors[rows] = _index(self.directors, items.directors)
            cast = np.zeros((n, items.top_cast.shape[1]), np.int64)
            cast[rows] = _index(self.cast, items.top_cast)
            out.update(directors=directors, cast=cast)
        if items.semantic.shape[1] and items.has_semantic.any():
            semantic = np.zeros((n, items.semantic.shape[1]), np.float32)
            semantic[rows] = items.semantic
            mask = np.zeros(n, bool)
            mask[rows] = items.has_semantic
            out.update(semantic=semantic, semantic_mask=mask)
        return out

    def save(self, directory: str | os.PathLike[str]) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "vocab.npz", user_ids=self.user_ids, movie_ids=self.movie_ids, directors=self.directors,
                 cast=self.cast, year_edges=self.year_edges)
        (directory / "vocab.json").write_text(json.dumps({"genres": list(self.genres)}))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RankingVocab:
        directory = Path(directory)
        arrays = np.load(directory / "vocab.npz")
        genres = tuple(json.loads((directory / "vocab.json").read_text())["genres"])
        return cls(arrays["user_ids"], arrays["movie_ids"], genres, arrays["directors"], arrays["cast"],
                   arrays["year_edges"])


@dataclass(frozen=True)
class Normalizer:
    """Robust standardisation of dense features (fitted on training rows only) + missing indicators."""

    names: tuple[str, ...]
    center: np.ndarray  # float64 median per feature
    scale: np.ndarray  # float64 IQR / 1.349 (or std, or 1) per feature
    indicators: tuple[str, ...]  # features that get an `is missing` column

    @classmethod
    def fit(cls, columns: dict[str, np.ndarray]) -> Normalizer:
        names = tuple(columns)
        center, scale, indicators = [], [], []
        for name in names:
            x = np.asarray(columns[name], dtype=np.float64)
            ok = np.isfinite(x)
            v = x[ok]
            if v.size:
                q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
                s = (q3 - q1) / 1.349 or float(v.std()) or 1.0
            else:
                med, s = 0.0, 1.0
            center.append(med)
            scale.append(s)
            if not ok.all():
                indicators.append(name)
        return cls(names, np.asarray(center), np.asarray(scale), tuple(indicators))

    @property
    def output_names(self) -> tuple[str, ...]:
        return (*self.names, *(f"{n}_missing" for n in self.indicators))

    @property
    def width(self) -> int:
        return len(self.names) + len(self.indicators)

    def transform(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(n, width) float32: clipped robust z-scores (0 where absent), then the indicator columns."""
        n = len(next(iter(columns.values()))) if columns else 0
        out = np.zeros((n, self.width), np.float32)
        for j, name in enumerate(self.names):
            x = np.asarray(columns[name], dtype=np.float64)
            z = np.clip((x - self.center[j]) / self.scale[j], -CLIP, CLIP)
            out[:, j] = np.where(np.isfinite(z), z, 0.0)
        for k, name in enumerate(self.indicators):
            out[:, len(self.names) + k] = ~np.isfinite(np.asarray(columns[name], dtype=np.float64))
        return out

    def to_dict(self) -> dict:
        return {"names": list(self.names), "center": self.center.tolist(), "scale": self.scale.tolist(),
                "indicators": list(self.indicators)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(tuple(d["names"]), np.asarray(d["center"], dtype=np.float64),
                   np.asarray(d["scale"], dtype=np.float64), tuple(d["indicators"]))


class BatchBuilder:
    """Sample rows (Arrow) -> the model's input arrays (NumPy; the trainer moves them to torch)."""

    def __init__(self, store: SequenceStore, vocab: RankingVocab, normalizer: Normalizer, history_len: int):
        self.store = store
        self.vocab = vocab
        self.normalizer = normalizer
        self.history_len = int(history_len)

    @property
    def columns(self) -> list[str]:
        """The sample columns a batch reads (`watch` / `like` only where present: rows to score have none)."""
        return ["user_id", "movie_id", "seq_pos", "cutoff_ts", "watch", "like", *self.normalizer.names]

    def __call__(self, table: pa.Table, group_histories: bool = False) -> dict[str, np.ndarray]:
        """The batch of `table`'s rows. `group_histories`: consecutive rows with the same (user, seq_pos,
        cut-off) share one history row — `hist_*` get one row per such run and `hist_group` maps rows to them
        (the model's grouped form; a user's candidates, scored together, then cost one history)."""
        labels = {"watch", "like"}
        col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in self.columns
               if name not in labels or name in table.column_names}
        for name in labels - set(col):
            col[name] = np.zeros(table.num_rows, np.float32)
        users = np.asarray(col["user_id"], dtype=np.int64)
        store_pos = self.store.user_index(users)
        if (store_pos < 0).any():
            raise ValueError(f"user {users[store_pos < 0][0]} of the samples is not in the sequence store "
                             "(samples and store come from different runs: rebuild `user_sequences` and the shards)")
        seq_pos = np.asarray(col["seq_pos"])
        cutoff = np.asarray(col["cutoff_ts"], dtype=np.int64)
        extra: dict[str, np.ndarray] = {}
        if group_histories:
            starts = np.ones(users.size, bool)
            starts[1:] = (users[1:] != users[:-1]) | (seq_pos[1:] != seq_pos[:-1]) | (cutoff[1:] != cutoff[:-1])
            extra["hist_group"] = np.cumsum(starts) - 1
            first = np.flatnonzero(starts)
            store_pos, seq_pos, cutoff = store_pos[first], seq_pos[first], cutoff[first]
        movies, ratings, ts, mask = self.store.history(store_pos, seq_pos, self.history_len)
        gap_days = np.maximum(cutoff[:, None] - ts, 0) / DAY
        return {
            **extra,
            "user": self.vocab.user_index(users),
            "item": self.vocab.item_index(col["movie_id"]),
            "hist_items": np.where(mask, self.vocab.item_index(movies), 0),
            "hist_mask": mask,
            "hist_ratings": np.where(mask, ratings, 0.0).astype(np.float32),
            "hist_log_gap": np.where(mask, np.log1p(gap_days), 0.0).astype(np.float32),
            "dense": self.normalizer.transform({n: col[n] for n in self.normalizer.names}),
            "watch": np.asarray(col["watch"], dtype=np.float32),
            "like": np.asarray(col["like"], dtype=np.float32),
        }
