"""Popularity channel: the most interacted-with items overall, or within a recent window of the
training data (`window_days` before the last training timestamp); training items excluded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.recall.base import BaseRecall, Interactions


class PopularityRecall(BaseRecall):
    name = "popularity"

    def __init__(self, window_days: float | None = None):
        self.window_days = window_days
        self.scores: np.ndarray | None = None
        self.train: Interactions | None = None

    def fit(self, train: Interactions) -> PopularityRecall:
        weights = np.ones(train.items.size, dtype=np.float64)
        if self.window_days is not None and train.timestamps.size:
            since = train.timestamps.max() - self.window_days * 86400.0
            weights = (train.timestamps >= since).astype(np.float64)
        counts = np.bincount(train.items, weights=weights, minlength=train.n_items)
        # Ties (and items absent from the window) ordered by overall popularity.
        overall = np.bincount(train.items, minlength=train.n_items)
        self.scores = (counts + overall / (overall.max(initial=0) + 1.0)).astype(np.float32)
        self.train = train
        return self

    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from movielens_assets.core.recall.kernels import ranked_unseen

        assert self.scores is not None and self.train is not None, "fit first"
        ranking = np.argsort(-self.scores, kind="stable")  # ties by the smaller index
        return ranked_unseen(users, self.train.indptr, self.train.items, ranking, self.scores, k)

    def save(self, directory: Path) -> None:
        assert self.scores is not None, "fit first"
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / "scores.npy", self.scores)
            (tmp / "params.json").write_text(json.dumps({"window_days": self.window_days}))

    @classmethod
    def load(cls, directory: Path, train: Interactions) -> PopularityRecall:
        model = cls(**json.loads((directory / "params.json").read_text()))
        model.scores, model.train = np.load(directory / "scores.npy"), train
        return model
