"""One text per movie, from everything we know about it, with a content hash.

Template `item-text-v1` (lines joined with a newline; a line whose parts are all missing is left out,
so a movie without TMDb data or tags still gets a well-formed text):

    {title} ({year})
    Genres: {genre}, {genre}, ...
    Directed by {director}, {director}.
    Starring {cast 1}, ..., {cast 5}.
    Keywords: {keyword}, ... (at most 12).
    Tags: {tag}, ... (at most 10).
    {tagline}
    {overview}

- **title**: the MovieLens title without its trailing `(year)` group, with a trailing article moved to
  the front (`Grumpier Old Men, The` -> `The Grumpier Old Men`, `Avventura, L'` -> `L'Avventura`).
  **year**: MovieLens year, else the TMDb release year. **genres**: MovieLens genres, in file order.
- From the TMDb star tables, when the movie has a payload (`movie_tmdb.has_payload`):
  **directors** (crew job `Director`, at most 2, by person id), **cast** (the 5 top-billed by
  `cast_order`, each name once), **keywords** (payload order, at most 12), **tagline**, **overview**.
- **tags**: the user tags of `tags.parquet`, lower-cased and trimmed, ranked by the number of
  distinct users who used them on the movie (ties alphabetical), at most 10.
- Whitespace inside every field is collapsed to single spaces. Short, structured lines come first
  and the overview last, so a model that truncates long inputs (MiniLM: 256 tokens) loses the
  overview's tail, not the keywords.

`text_hash` is the SHA-256 (hex) of the text: it changes exactly when the text does, so the
embedding store re-embeds only those movies. Changing the template means a new `TEMPLATE_VERSION`
(recorded in the Parquet metadata and the asset metadata); texts it leaves unchanged keep their
hash and their embeddings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from movielens_assets.core.data.atomic import atomic_path
from movielens_assets.core.data.duck import one_row, register_parquet_view, sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

TEMPLATE_VERSION = "item-text-v1"
TOP_TAGS = 10
TOP_CAST = 5
MAX_KEYWORDS = 12
MAX_DIRECTORS = 2
ARTICLES = ("The", "A", "An", "Les", "La", "Le", "Il", "Das", "Der", "Die", "El", "Los", "Las")

#: Columns of `item_text.parquet`.
COLUMNS = ("movie_id", "text", "text_hash", "n_chars", "has_tmdb", "n_tags")

# The TMDb star tables the template reads, with the columns used and their empty stand-in.
_TMDB_TABLES: dict[str, str] = {
    "movie_tmdb": "movie_id INTEGER, tmdb_id INTEGER, has_payload BOOLEAN",
    "tmdb_movie": "tmdb_id INTEGER, overview VARCHAR, tagline VARCHAR, release_date DATE",
    "tmdb_cast": "credit_id VARCHAR, tmdb_id INTEGER, person_id INTEGER, cast_order INTEGER",
    "tmdb_crew": "credit_id VARCHAR, tmdb_id INTEGER, person_id INTEGER, job VARCHAR",
    "tmdb_person": "person_id INTEGER, name VARCHAR",
    "tmdb_movie_keyword": "tmdb_id INTEGER, keyword_id INTEGER, position INTEGER",
    "tmdb_keyword": "keyword_id INTEGER, name VARCHAR",
}
_TAGS_COLUMNS = "user_id INTEGER, movie_id INTEGER, tag VARCHAR"


@dataclass
class ItemTextReport:
    path: Path
    rows: int
    template_version: str
    tmdb_available: bool
    """True when the TMDb star tables were present and held at least one movie payload."""
    stats: dict[str, Any]
    """with_tmdb, with_overview, with_cast, with_director, with_keywords, with_tags, mean_chars, max_chars."""
    changes: dict[str, int] | None
    """Against the previous file: new, changed, unchanged, removed (None on a first build)."""
    seconds: float
    sources: dict[str, str] = field(default_factory=dict)
    """Input table -> `used`, `empty` or `absent`."""


def _clean(expr: str) -> str:
    """NULL for empty, else whitespace collapsed."""
    return f"nullif(trim(regexp_replace(coalesce({expr}, ''), '\\s+', ' ', 'g')), '')"


def _title_sql() -> str:
    base = "regexp_replace(trim(m.title), '\\s*\\((\\d{4})[^()]*\\)\\s*$', '')"
    articles = "|".join(ARTICLES)
    moved = f"regexp_replace({base}, '^(.+), ({articles})$', '\\2 \\1')"
    return f"regexp_replace({moved}, '^(.+), (L'')$', '\\2\\1')"


def item_text_query() -> str:
    """The SQL of template `item-text-v1` over the views movies, tags and the TMDb tables."""
    nl = "chr(10)"
    return f"""
WITH
tag_counts AS (
    SELECT movie_id, lower({_clean('tag')}) AS tag, count(DISTINCT user_id) AS users
    FROM tags GROUP BY ALL HAVING tag IS NOT NULL
),
top_tags AS (
    SELECT movie_id, list(tag ORDER BY users DESC, tag) AS tags FROM (
        SELECT *, row_number() OVER (PARTITION BY movie_id ORDER BY users DESC, tag) AS r FROM tag_counts
    ) WHERE r <= {TOP_TAGS} GROUP BY movie_id
),
linked AS (SELECT DISTINCT movie_id, tmdb_id FROM movie_tmdb WHERE has_payload AND tmdb_id IS NOT NULL),
details AS (
    SELECT tmdb_id, {_clean('overview')} AS overview, {_clean('tagline')} AS tagline,
           year(release_date) AS release_year
    FROM tmdb_movie
),
directors AS (
    SELECT tmdb_id, list(name ORDER BY person_id) AS names FROM (
        SELECT tmdb_id, person_id, name, row_number() OVER (PARTITION BY tmdb_id ORDER BY person_id) AS r FROM (
            SELECT DISTINCT c.tmdb_id, c.person_id, {_clean('p.name')} AS name
            FROM tmdb_crew c JOIN tmdb_person p USING (person_id) WHERE c.job = 'Director'
        ) WHERE name IS NOT NULL
    ) WHERE r <= {MAX_DIRECTORS} GROUP BY tmdb_id
),
cast_top AS (
    SELECT tmdb_id, list(name ORDER BY billing, first_credit) AS names FROM (
        SELECT tmdb_id, name, billing, first_credit,
               row_number() OVER (PARTITION BY tmdb_id ORDER BY billing, first_credit) AS r FROM (
            SELECT c.tmdb_id, c.person_id, any_value({_clean('p.name')}) AS name,
                   min(coalesce(c.cast_order, 2147483647)) AS billing, min(c.credit_id) AS first_credit
            FROM tmdb_cast c JOIN tmdb_person p USING (person_id) GROUP BY c.tmdb_id, c.person_id
        ) WHERE name IS NOT NULL
    ) WHERE r <= {TOP_CAST} GROUP BY tmdb_id
),
keywords AS (
    SELECT tmdb_id, list(name ORDER BY position) AS names FROM (
        SELECT mk.tmdb_id, mk.position, {_clean('k.name')} AS name,
               row_number() OVER (PARTITION BY mk.tmdb_id ORDER BY mk.position) AS r
        FROM tmdb_movie_keyword mk JOIN tmdb_keyword k USING (keyword_id)
        WHERE {_clean('k.name')} IS NOT NULL
    ) WHERE r <= {MAX_KEYWORDS} GROUP BY tmdb_id
),
parts AS (
    SELECT
        m.movie_id,
        {_title_sql()} AS title,
        coalesce(m.year, d.release_year) AS year,
        m.genres,
        l.tmdb_id IS NOT NULL AS has_tmdb,
        dr.names AS directors, ca.names AS cast_names, kw.names AS keywords, tt.tags,
        d.tagline, d.overview
    FROM movies m
    LEFT JOIN top_tags tt USING (movie_id)
    LEFT JOIN (SELECT movie_id, min(tmdb_id) AS tmdb_id FROM linked GROUP BY movie_id) l USING (movie_id)
    LEFT JOIN details d ON d.tmdb_id = l.tmdb_id
    LEFT JOIN directors dr ON dr.tmdb_id = l.tmdb_id
    LEFT JOIN cast_top ca ON ca.tmdb_id = l.tmdb_id
    LEFT JOIN keywords kw ON kw.tmdb_id = l.tmdb_id
),
texts AS (
    SELECT movie_id, has_tmdb, coalesce(len(tags), 0)::INTEGER AS n_tags,
           directors IS NOT NULL AS has_director, cast_names IS NOT NULL AS has_cast,
           keywords IS NOT NULL AS has_keywords, overview IS NOT NULL AS has_overview,
           concat_ws({nl},
               CASE WHEN year IS NULL THEN title ELSE title || ' (' || year || ')' END,
               CASE WHEN len(genres) > 0 THEN 'Genres: ' || array_to_string(genres, ', ') || '.' END,
               CASE WHEN len(directors) > 0 THEN 'Directed by ' || array_to_string(directors, ', ') || '.' END,
               CASE WHEN len(cast_names) > 0 THEN 'Starring ' || array_to_string(cast_names, ', ') || '.' END,
               CASE WHEN len(keywords) > 0 THEN 'Keywords: ' || array_to_string(keywords, ', ') || '.' END,
               CASE WHEN len(tags) > 0 THEN 'Tags: ' || array_to_string(tags, ', ') || '.' END,
               tagline,
               overview
           ) AS text
    FROM parts
)
SELECT movie_id::INTEGER AS movie_id, text, sha256(text) AS text_hash, length(text)::INTEGER AS n_chars,
       has_tmdb, n_tags, has_director, has_cast, has_keywords, has_overview
FROM texts
"""


def build_item_texts(
    con: duckdb.DuckDBPyConnection,
    *,
    movies: str | os.PathLike[str],
    tags: str | os.PathLike[str] | None,
    tmdb_dir: str | os.PathLike[str] | None,
    out_path: str | os.PathLike[str],
    dataset: str = "",
) -> ItemTextReport:
    """Write `out_path` (Parquet, one row per movie, sorted by movie_id) atomically and report.

    `tags` and the TMDb star tables under `tmdb_dir` are optional: absent or empty inputs simply
    leave their lines out of the texts.
    """
    start = time.perf_counter()
    out_path = Path(out_path)
    movies = Path(movies)
    if not movies.is_file():
        raise FileNotFoundError(f"{movies} does not exist: materialize `movies` (group ingest) first")
    con.execute(f"CREATE OR REPLACE TEMP VIEW movies AS SELECT * FROM read_parquet({sql_str(movies)})")
    sources = {"movies": "used", "tags": register_parquet_view(con, "tags", tags, _TAGS_COLUMNS)}
    tmdb_root = Path(tmdb_dir) if tmdb_dir else None
    for name, columns in _TMDB_TABLES.items():
        sources[name] = register_parquet_view(con, name, tmdb_root / f"{name}.parquet" if tmdb_root else None,
                                              columns)
    tmdb_available = sources["movie_tmdb"] == "used" and sources["tmdb_movie"] == "used"

    con.execute(f"CREATE OR REPLACE TEMP TABLE _item_text AS {item_text_query()}")
    (rows, with_tmdb, with_overview, with_cast, with_director, with_keywords, with_tags, mean_chars,
     max_chars) = one_row(con.execute(
        "SELECT count(*), count_if(has_tmdb), count_if(has_overview), count_if(has_cast), count_if(has_director), "
        "count_if(has_keywords), count_if(n_tags > 0), coalesce(avg(n_chars), 0), coalesce(max(n_chars), 0) "
        "FROM _item_text"
    ))
    kv = {"movielens.dataset": dataset, "movielens.table": "item_text",
          "movielens.item_text_template": TEMPLATE_VERSION}
    meta = "{" + ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in kv.items()) + "}"
    changes: dict[str, int] | None = None
    with atomic_path(out_path) as tmp:
        con.execute(
            f"COPY (SELECT {', '.join(COLUMNS)} FROM _item_text ORDER BY movie_id) TO {sql_str(tmp)} "
            f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {meta})"
        )
        if out_path.is_file():
            changes = diff_item_texts(con, out_path, tmp)
    con.execute("DROP TABLE _item_text")

    def share(n: int) -> float:
        return round(n / rows, 4) if rows else 0.0

    stats = {
        "with_tmdb": int(with_tmdb), "with_tmdb_share": share(with_tmdb),
        "with_overview": int(with_overview), "with_overview_share": share(with_overview),
        "with_cast": int(with_cast), "with_director": int(with_director), "with_keywords": int(with_keywords),
        "with_tags": int(with_tags), "with_tags_share": share(with_tags),
        "mean_chars": round(float(mean_chars), 1), "max_chars": int(max_chars),
    }
    return ItemTextReport(out_path, int(rows), TEMPLATE_VERSION, tmdb_available, stats, changes,
                          time.perf_counter() - start, sources)


def diff_item_texts(con: duckdb.DuckDBPyConnection, old: Path, new: Path) -> dict[str, int]:
    """Counts of movies new / changed / unchanged / removed between two item_text files."""
    row = one_row(con.execute(
        f"""SELECT count_if(o.movie_id IS NULL), count_if(o.text_hash <> n.text_hash),
                   count_if(o.text_hash = n.text_hash), count_if(n.movie_id IS NULL)
            FROM (SELECT movie_id, text_hash FROM read_parquet({sql_str(old)})) o
            FULL OUTER JOIN (SELECT movie_id, text_hash FROM read_parquet({sql_str(new)})) n
            ON o.movie_id = n.movie_id"""
    ))
    return dict(zip(("new", "changed", "unchanged", "removed"), (int(v) for v in row), strict=True))
