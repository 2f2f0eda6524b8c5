"""The data lake: one root, one folder per stage. Every path in the project goes through here."""


from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from movielens_assets.settings import default

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


class DataLake(dg.ConfigurableResource):
    """Paths of the local data lake rooted at `root` (`MOVIELENS_DATA_DIR`)."""

    root: str
    duckdb_memory_limit: str | None = default("duckdb_memory_limit")
    duckdb_threads: int | None = default("duckdb_threads")

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    @property
    def raw_dir(self) -> Path:
        return self.root_path / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root_path / "processed"

    @property
    def reports_dir(self) -> Path:
        return self.root_path / "reports"

    @property
    def recall_dir(self) -> Path:
        """`recall/`: splits, per-channel and merged candidates."""
        return self.root_path / "recall"

    @property
    def ranking_dir(self) -> Path:
        """`ranking/`: behaviour sequences, item / user profiles, the sharded samples (docs/RANKING.md)."""
        return self.root_path / "ranking"

    @property
    def models_dir(self) -> Path:
        return self.root_path / "models"

    @property
    def metrics_dir(self) -> Path:
        """`metrics/`: machine-readable evaluation results (JSON)."""
        return self.root_path / "metrics"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space (DuckDB spill files); safe to delete between runs."""
        return self.root_path / ".tmp"

    def processed(self, table: str) -> Path:
        """`processed/<table>.parquet`."""
        return self.processed_dir / f"{table}.parquet"

    def duckdb(self, default_memory_limit: str | None = None) -> "duckdb.DuckDBPyConnection":
        """A DuckDB connection configured for this machine, spilling into `tmp_dir`. Use it as a context manager,
        `with lake.duckdb() as con: ...` (a DuckDB connection closes itself when the block exits).

        `MOVIELENS_DUCKDB_MEMORY_LIMIT` wins; else `default_memory_limit` (a step's own bound); else
        DuckDB's default (80% of RAM)."""
        from movielens_assets.core.data.duck import connect

        return connect(
            memory_limit=self.duckdb_memory_limit or default_memory_limit,
            threads=self.duckdb_threads,
            temp_dir=self.tmp_dir / "duckdb",
        )
