"""A full disk during a table write: the previous output stays byte-identical, no temporary file remains, and the
error names the output path and "No space left on device" (the ranking shard's case: test_shards.py)."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest

from movielens_assets.core.data import duck, ingest
from movielens_assets_tests.helpers import RATINGS_CSV, write_movielens_dir


class _FullDiskConnection:
    """A DuckDB connection whose Parquet COPY writes part of its file, then fails as DuckDB does on a full disk."""

    def __init__(self, con: duckdb.DuckDBPyConnection, how: str):
        self._con, self._how = con, how

    def execute(self, sql: str, *args):
        if sql.startswith("COPY"):
            target = sql.rsplit(" TO '", 1)[1].split("'", 1)[0]
            Path(target).write_bytes(b"PAR1" + b"\0" * 1000)  # a half-written file
            if self._how == "duckdb":
                raise duckdb.IOException(f'IO Error: Could not write file "{target}": No space left on device')
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("how", ["duckdb", "oserror"])
def test_full_disk_during_an_ingest_keeps_the_previous_table(tmp_path, how):
    src = write_movielens_dir(tmp_path / "csv")
    out = tmp_path / "processed" / "ratings.parquet"
    con = duck.connect()
    try:
        ingest.ingest_csv(con, ingest.RATINGS, src, out, dataset="test")
        before = out.read_bytes()
        (src / "ratings.csv").write_text(RATINGS_CSV + "9,1,4.0,978300760\n")
        with pytest.raises(OSError) as err:
            ingest.ingest_csv(_FullDiskConnection(con, how), ingest.RATINGS, src, out, dataset="test")  # type: ignore[arg-type]
    finally:
        con.close()
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC
    assert "No space left on device" in message and str(out) in message and "previous version" in message
    assert "could not be converted" not in message  # a disk problem is not reported as a data problem
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["ratings.parquet"]
