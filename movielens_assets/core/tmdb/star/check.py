"""`check_star_schema`: verify written star tables against STAR_TABLES (schema, keys, consistency)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from movielens_assets.core.data.duck import connect, one_row, sql_str
from movielens_assets.core.tmdb.star.schema import STAR_TABLES
from movielens_assets.core.tmdb.star.sql import _coverage


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    description: str
    severity: Literal["error", "warn"] = "error"
    metadata: dict[str, Any] = field(default_factory=dict)


def check_star_schema(out_dir: str | os.PathLike[str]) -> list[CheckResult]:
    """Verify the star tables under `out_dir` against STAR_TABLES.

    One result per table schema (`schema:<t>`), primary key (`pk:<t>`: unique, not NULL), foreign
    key (`fk:<t>.<cols>`: every non-NULL reference resolves), plus `movie_tmdb:consistency`
    (has_payload / tmdb_id_shared agree with the data) and `coverage` (always passes; stats).
    """
    out = Path(out_dir)
    results: list[CheckResult] = []
    present: set[str] = set()
    con = connect()
    try:
        for spec in STAR_TABLES.values():
            path = out / spec.file_name
            name = f"schema:{spec.name}"
            if not path.exists():
                results.append(CheckResult(name, False, f"{path} is missing"))
                continue
            schema = pq.read_schema(path)
            got = [(f.name, f.type) for f in schema]
            want = [(c.name, c.type) for c in spec.columns]
            ok = got == want
            results.append(CheckResult(
                name, ok, "columns and types match STAR_TABLES" if ok else f"{path}: schema differs",
                metadata={} if ok else {"expected": [f"{n} {t}" for n, t in want],
                                        "actual": [f"{n} {t}" for n, t in got]},
            ))
            con.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM read_parquet({sql_str(path)})")
            present.add(spec.name)

        for spec in STAR_TABLES.values():
            if spec.name not in present:
                continue
            keys = ", ".join(f'"{k}"' for k in spec.primary_key)
            not_null = " OR ".join(f'"{k}" IS NULL' for k in spec.primary_key)
            rows, dup, nulls = one_row(con.execute(
                f"SELECT count(*), count(*) - count(DISTINCT row({keys})), count(*) FILTER (WHERE {not_null}) "
                f"FROM {spec.name}"
            ))
            sample = con.execute(
                f"SELECT {keys} FROM {spec.name} GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 5"
            ).fetchall()
            results.append(CheckResult(
                f"pk:{spec.name}", dup == 0 and nulls == 0,
                f"primary key ({', '.join(spec.primary_key)}) unique and not NULL",
                metadata={"rows": rows, "duplicates": dup, "nulls": nulls,
                          "duplicate_keys_sample": [list(s) for s in sample]},
            ))
            for fk in spec.foreign_keys:
                name = f"fk:{spec.name}.{','.join(fk.columns)}->{fk.ref_table}"
                if fk.ref_table not in present:
                    results.append(CheckResult(name, False, f"{fk.ref_table} is missing"))
                    continue
                cond = " AND ".join(f'c."{c}" IS NOT NULL' for c in fk.columns)
                if fk.where:
                    cond += f" AND ({fk.where})"
                join = " AND ".join(f'c."{c}" = p."{r}"' for c, r in zip(fk.columns, fk.ref_columns, strict=True))
                cols = ", ".join(f'c."{c}"' for c in fk.columns)
                orphans = con.execute(
                    f"SELECT {cols} FROM {spec.name} c ANTI JOIN {fk.ref_table} p ON {join} "
                    f"WHERE {cond} ORDER BY ALL"
                ).fetchall()
                results.append(CheckResult(
                    name, not orphans,
                    f"every {spec.name}.({', '.join(fk.columns)}) exists in {fk.ref_table}",
                    metadata={"orphans": len(orphans), "orphans_sample": [list(o) for o in orphans[:5]]},
                ))

        if {"movie_tmdb", "tmdb_movie"} <= present:
            bad_payload, bad_shared = one_row(con.execute("""
                SELECT count(*) FILTER (WHERE has_payload <> (t.tmdb_id IS NOT NULL)),
                       count(*) FILTER (WHERE tmdb_id_shared <> (mt.tmdb_id IS NOT NULL AND n > 1))
                FROM (SELECT *, count(*) OVER (PARTITION BY tmdb_id) AS n FROM movie_tmdb) mt
                LEFT JOIN tmdb_movie t ON t.tmdb_id = mt.tmdb_id"""))
            results.append(CheckResult(
                "movie_tmdb:consistency", bad_payload == 0 and bad_shared == 0,
                "has_payload and tmdb_id_shared agree with tmdb_movie and the tmdb_id counts",
                metadata={"wrong_has_payload": bad_payload, "wrong_tmdb_id_shared": bad_shared},
            ))
            results.append(CheckResult(
                "coverage", True, "share of MovieLens movies with TMDb data", severity="warn",
                metadata=_coverage(con),
            ))
    finally:
        con.close()
    return results


def failed_checks(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def coverage_json(report: Mapping[str, Any]) -> str:
    """The coverage block of a build report as stable JSON (for asset metadata / logs)."""
    return json.dumps(report.get("coverage", {}), sort_keys=True)
