"""What serving reads from the lake, where it lives, which asset writes it, and the checks that it is there and
belongs together (no Dagster: the CLI and the HTTP service load it without the code location).

Every file is one the pipeline already writes (paths as in assets/recall.py and assets/ranking.py, asserted equal
by the tests); nothing is recomputed at load time but small in-memory indexes over them:

  processed/movies.parquet                                movies            title, year, genres
  recall/splits/last_n/ids/, test.parquet                 splits            the IdMap; each user's last 3 rows
  ranking/sequences/last_n/                               user_sequences    each user's training history (mmap)
  ranking/recommendations/last_n/ranked.parquet           ranked_recommendations   the final lists (top 50)
  models/ranking/last_n/unified_ranker/meta.json          unified_ranker    the dataset the lists were trained on
  models/recall/last_n/{popularity,itemcf,semantic}/      *_recall          popularity scores, item neighbours
  features/item_text.parquet + item_embeddings/           item_embeddings   (optional) vectors of cold movies
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PROTOCOL = "last_n"
"""Serving uses the primary protocol's artifacts: the lists the ranker was evaluated on (docs/SERVING.md)."""


class ServingError(Exception):
    """A request or a lake that serving cannot answer; `status` is the HTTP status it maps to."""

    status = 400


class ArtifactMissing(ServingError):
    """A file serving needs does not exist (or comes from another run / dataset): names the asset to materialize."""

    status = 503

    def __init__(self, asset: str, path: Path | str, why: str = "does not exist"):
        self.asset, self.path = asset, str(path)
        super().__init__(f"{path} {why}: materialize `{asset}` first, e.g. `dagster asset materialize -m "
                         f"movielens_assets.definitions --select '*{asset}'` (or `make demo`)")


@dataclass(frozen=True)
class ServingPaths:
    """The lake files serving reads, under the lake root `root` (`MOVIELENS_DATA_DIR`)."""

    root: Path

    @property
    def movies(self) -> Path:
        return self.root / "processed" / "movies.parquet"

    @property
    def split_dir(self) -> Path:
        return self.root / "recall" / "splits" / PROTOCOL

    @property
    def ids(self) -> Path:
        return self.split_dir / "ids"

    @property
    def test_rows(self) -> Path:
        return self.split_dir / "test.parquet"

    @property
    def sequences(self) -> Path:
        return self.root / "ranking" / "sequences" / PROTOCOL

    @property
    def ranked(self) -> Path:
        return self.root / "ranking" / "recommendations" / PROTOCOL / "ranked.parquet"

    @property
    def ranker_meta(self) -> Path:
        return self.root / "models" / "ranking" / PROTOCOL / "unified_ranker" / "meta.json"

    def channel(self, name: str) -> Path:
        return self.root / "models" / "recall" / PROTOCOL / name

    @property
    def features(self) -> Path:
        return self.root / "features"

    def required(self) -> list[tuple[str, Path]]:
        """(asset, path) of every artifact serving cannot start without, upstream first."""
        return [("movies", self.movies), ("splits", self.ids / "items.npy"), ("splits", self.test_rows),
                ("user_sequences", self.sequences / "indptr.npy"),
                ("popularity_recall", self.channel("popularity") / "scores.npy"),
                ("itemcf_recall", self.channel("itemcf") / "neighbors.npy"),
                ("semantic_recall", self.channel("semantic") / "neighbours.npy"),
                ("unified_ranker", self.ranker_meta), ("ranked_recommendations", self.ranked)]


def check_artifacts(paths: ServingPaths, dataset: str | None = None) -> dict:
    """Raise `ArtifactMissing` naming the asset when a required file is missing, when a file is older than the split
    it was computed from (it comes from an earlier run: the split was rebuilt since), or when the ranker was trained
    on another dataset than `dataset`. Returns the ranker's `meta.json` data section."""
    for asset, path in paths.required():
        if not path.exists():
            raise ArtifactMissing(asset, path)
    split_time = (paths.ids / "items.npy").stat().st_mtime
    for asset, path in paths.required()[3:]:
        if path.stat().st_mtime < split_time:
            raise ArtifactMissing(asset, path, "is older than the split it depends on "
                                               f"({paths.ids}): it comes from an earlier run")
    try:
        data = json.loads(paths.ranker_meta.read_text()).get("data", {})
    except (OSError, ValueError) as exc:
        raise ArtifactMissing("unified_ranker", paths.ranker_meta, f"cannot be read ({exc})") from None
    trained_on = data.get("dataset")
    if dataset is not None and trained_on is not None and str(trained_on) != str(dataset):
        raise ArtifactMissing("ranked_recommendations", paths.ranked,
                              f"was computed on dataset {trained_on!r}, not on MOVIELENS_DATASET={dataset!r} (or "
                              "point MOVIELENS_DATA_DIR at that dataset's lake)")
    return data
