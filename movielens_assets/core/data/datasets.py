"""Which MovieLens dataset `MOVIELENS_DATASET` names, and where its CSV files are (fetching or
generating them when needed).

Three kinds of dataset:
- a GroupLens release (`ml-32m`, `ml-25m`, `ml-latest-small`, ...): downloaded, MD5-verified, extracted;
- `synthetic-<size>`: generated deterministically for a seed, in the exact ML-32M CSV format;
- a path to a local directory holding ratings.csv and movies.csv (tags.csv, links.csv optional).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from movielens_assets.core.data.errors import DatasetNotFoundError

DatasetKind = Literal["grouplens", "synthetic", "directory"]
REQUIRED_FILES = ("ratings.csv", "movies.csv")
OPTIONAL_FILES = ("tags.csv", "links.csv")


@dataclass(frozen=True)
class DatasetRef:
    name: str
    """What the user wrote in MOVIELENS_DATASET."""
    kind: DatasetKind


def parse_dataset(name: str) -> DatasetRef:
    """Classify a dataset name; raises DatasetNotFoundError with the accepted forms otherwise."""
    from movielens_assets.core.data import grouplens

    name = name.strip()
    if name.startswith("synthetic-"):
        from movielens_assets.core.data.synthetic import parse_synthetic_name

        parse_synthetic_name(name)  # raises ValueError on an invalid size
        return DatasetRef(name, "synthetic")
    if grouplens.is_release_name(name):
        return DatasetRef(name, "grouplens")
    path = Path(name).expanduser()
    if "/" in name or name.startswith(".") or path.is_dir():
        if not path.is_dir():
            raise DatasetNotFoundError(f"MOVIELENS_DATASET={name!r}: directory {path.resolve()} does not exist")
        return DatasetRef(str(path.resolve()), "directory")
    raise DatasetNotFoundError(
        f"MOVIELENS_DATASET={name!r} is not a known dataset. Use a GroupLens release "
        f"({', '.join(sorted(grouplens.RELEASES))}), synthetic-<size> (synthetic-tiny, synthetic-small, "
        f"synthetic-1m, synthetic-10m, synthetic-32m, synthetic-<N>k|m) or a path to a directory of MovieLens CSVs"
    )


def raw_dir_for(ref: DatasetRef, raw_root: Path, seed: int) -> Path:
    """Where the CSVs of `ref` live (or will live) under the lake's raw/ folder."""
    if ref.kind == "directory":
        return Path(ref.name)
    if ref.kind == "synthetic":
        return raw_root / f"{ref.name}-seed{seed}"
    return raw_root / ref.name


def materialize_dataset(
    ref: DatasetRef,
    raw_root: Path,
    *,
    seed: int,
    grouplens_url: str,
    log: Callable[[str], None] = print,
) -> Path:
    """Make the CSV files of `ref` available locally and return their directory."""
    if ref.kind == "synthetic":
        from movielens_assets.core.data.synthetic import generate_movielens, parse_synthetic_name

        out = raw_dir_for(ref, raw_root, seed)
        generate_movielens(parse_synthetic_name(ref.name), out, seed=seed, progress=log)
        csv_dir = out
    elif ref.kind == "grouplens":
        from movielens_assets.core.data.grouplens import fetch_release

        csv_dir = fetch_release(ref.name, raw_root, grouplens_url, log=log)
    else:
        csv_dir = Path(ref.name)
    missing = [f for f in REQUIRED_FILES if not (csv_dir / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{csv_dir}: missing required file(s) {', '.join(missing)}; a MovieLens dataset directory needs "
            f"{', '.join(REQUIRED_FILES)} (and optionally {', '.join(OPTIONAL_FILES)})"
        )
    return csv_dir
