"""Which MovieLens dataset to ingest, and how to get its CSV files."""


from collections.abc import Callable
from pathlib import Path

import dagster as dg

from movielens_assets.core.data.datasets import DatasetRef, materialize_dataset, parse_dataset, raw_dir_for
from movielens_assets.settings import default


class MovieLensSource(dg.ConfigurableResource):
    """`dataset`: a GroupLens release name, `synthetic-<size>`, or a directory of MovieLens CSVs."""

    dataset: str
    seed: int = default("seed")
    grouplens_url: str = default("grouplens_url")

    @property
    def ref(self) -> DatasetRef:
        return parse_dataset(self.dataset)

    def csv_dir(self, raw_root: Path) -> Path:
        """Where the CSVs are once `fetch` has run (no network, no generation)."""
        return raw_dir_for(self.ref, raw_root, self.seed)

    def fetch(self, raw_root: Path, log: Callable[[str], None]) -> Path:
        """Download / generate / locate the dataset's CSVs and return their directory."""
        return materialize_dataset(self.ref, raw_root, seed=self.seed, grouplens_url=self.grouplens_url, log=log)
