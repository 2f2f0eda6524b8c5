"""TMDb star schema: dimensions + bridges built from the landing zone's winning `ok` payloads.

`STAR_TABLES` is the single description of every table (columns, Arrow types, primary key,
foreign keys); the builder casts its output to it, `check_star_schema` verifies against it and
docs/TMDB.md embeds `schema_markdown()`. Payload JSON is flattened once into column buffers (the
only per-record Python), everything else — deduplication, NULL normalisation, date parsing,
joins — is DuckDB SQL over Arrow tables.

Normalisation rules (documented in docs/TMDB.md):
- `""` -> NULL for every text column; `release_date` `""` -> NULL; `runtime`, `budget`, `revenue`
  `0` -> NULL (TMDb uses 0 for "unknown").
- Dimension rows seen in several payloads (a person's popularity, a genre name, ...) take their
  attributes from the latest fetched payload (ties: higher tmdb_id, then credit_id).
- Country / language dimensions hold every code referenced anywhere (movie origin_country,
  original_language, company origin_country, release dates); `name` is NULL when no payload named it.

Modules: `schema` (STAR_TABLES, schema_markdown), `flatten` (payload JSON -> staging Arrow tables),
`sql` (staging -> star tables in DuckDB), `build` (build_star_schema), `check` (check_star_schema).
"""

from __future__ import annotations

from movielens_assets.core.tmdb.star.build import build_star_schema
from movielens_assets.core.tmdb.star.check import CheckResult, check_star_schema, coverage_json, failed_checks
from movielens_assets.core.tmdb.star.schema import STAR_TABLES, Column, ForeignKey, TableSpec, schema_markdown

__all__ = [
    "STAR_TABLES",
    "CheckResult",
    "Column",
    "ForeignKey",
    "TableSpec",
    "build_star_schema",
    "check_star_schema",
    "coverage_json",
    "failed_checks",
    "schema_markdown",
]
