"""Item text: template, TMDb / tags optional, hashes, change detection (DuckDB only, fast)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.data import duck, ingest
from movielens_assets.core.text.item_text import TEMPLATE_VERSION, build_item_texts
from movielens_assets.core.tmdb.star import STAR_TABLES
from movielens_assets_tests.helpers import write_movielens_dir

TAGS = (
    "userId,movieId,tag,timestamp\n"
    "1,1,Pixar,978300761\n2,1,pixar ,978300762\n3,1,funny,978300763\n1,1,pixar,978300764\n"  # pixar: 2 users
    "2,3,\"heist, classic\",978299001\n3,3,  ,978299002\n"
)


@pytest.fixture
def processed(tmp_path) -> Path:
    src = write_movielens_dir(tmp_path / "csv")
    (src / "tags.csv").write_text(TAGS, encoding="utf-8")
    out = tmp_path / "processed"
    con = duck.connect()
    for spec in (ingest.MOVIES, ingest.TAGS):
        ingest.ingest_csv(con, spec, src, out / f"{spec.name}.parquet", dataset="test")
    con.close()
    return out


def _zero(t: pa.DataType):
    if pa.types.is_timestamp(t):
        return datetime(2024, 1, 1)
    if pa.types.is_boolean(t):
        return False
    if pa.types.is_string(t):
        return "x"
    return 0


def write_star(tmdb_dir: Path, rows: dict[str, list[dict]]) -> Path:
    """Every star table with the real schema (empty unless `rows` has some)."""
    tmdb_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in STAR_TABLES.items():
        required = {f.name: _zero(f.type) for f in spec.schema if not f.nullable}
        filled = [{**required, **{k: v for k, v in row.items() if v is not None or k not in required}}
                  for row in rows.get(name, [])]
        table = pa.Table.from_pylist(filled, schema=spec.schema)
        pq.write_table(table, tmdb_dir / f"{name}.parquet")
    return tmdb_dir


STAR_ROWS = {
    "movie_tmdb": [
        {"movie_id": 1, "imdb_id": "tt0114709", "tmdb_id": 862, "source": "links", "landing_outcome": "ok",
         "has_payload": True, "tmdb_id_shared": False},
        {"movie_id": 2, "imdb_id": "tt0113228", "tmdb_id": 15602, "source": "links", "landing_outcome": "not_found",
         "has_payload": False, "tmdb_id_shared": False},
    ],
    "tmdb_movie": [{"tmdb_id": 862, "title": "Toy Story", "overview": "Led by Woody,\n  Andy's toys   live happily.",
                    "tagline": "", "fetched_at": None}],
    "tmdb_person": [{"person_id": p, "name": n} for p, n in
                    [(31, "Tom Hanks"), (12898, "Tim Allen"), (7167, "Don Rickles"), (7879, "John Lasseter"),
                     (1, "Extra One"), (2, "Extra Two"), (3, "Extra Three"), (4, "Extra Four")]],
    "tmdb_cast": [
        {"credit_id": "c1", "tmdb_id": 862, "person_id": 31, "character": "Woody", "cast_order": 0},
        {"credit_id": "c2", "tmdb_id": 862, "person_id": 12898, "character": "Buzz", "cast_order": 1},
        {"credit_id": "c2b", "tmdb_id": 862, "person_id": 12898, "character": "Buzz (voice)", "cast_order": 9},
        {"credit_id": "c3", "tmdb_id": 862, "person_id": 7167, "character": "Mr. Potato Head", "cast_order": 2},
        {"credit_id": "c4", "tmdb_id": 862, "person_id": 1, "cast_order": 3},
        {"credit_id": "c5", "tmdb_id": 862, "person_id": 2, "cast_order": 4},
        {"credit_id": "c6", "tmdb_id": 862, "person_id": 3, "cast_order": 5},  # 6th billed: left out
        {"credit_id": "c7", "tmdb_id": 862, "person_id": 4, "cast_order": None},
    ],
    "tmdb_crew": [
        {"credit_id": "d1", "tmdb_id": 862, "person_id": 7879, "department": "Directing", "job": "Director"},
        {"credit_id": "d2", "tmdb_id": 862, "person_id": 31, "department": "Writing", "job": "Screenplay"},
    ],
    "tmdb_keyword": [{"keyword_id": 1, "name": "toy"}, {"keyword_id": 2, "name": "friendship"},
                     {"keyword_id": 3, "name": ""}],
    "tmdb_movie_keyword": [{"tmdb_id": 862, "keyword_id": 2, "position": 1},
                           {"tmdb_id": 862, "keyword_id": 1, "position": 0},
                           {"tmdb_id": 862, "keyword_id": 3, "position": 2}],
}


def texts(path: Path) -> dict[int, str]:
    t = pq.read_table(path)
    return dict(zip(t.column("movie_id").to_pylist(), t.column("text").to_pylist(), strict=True))


def test_without_tmdb_or_tags_every_movie_gets_title_year_and_genres(tmp_path, processed):
    con = duck.connect()
    report = build_item_texts(con, movies=processed / "movies.parquet", tags=None, tmdb_dir=tmp_path / "absent",
                              out_path=tmp_path / "item_text.parquet", dataset="test")
    assert report.rows == 4 and not report.tmdb_available and report.changes is None
    assert report.sources["tags"] == "absent" and report.sources["tmdb_movie"] == "absent"
    t = texts(report.path)
    assert t[1] == "Toy Story (1995)\nGenres: Adventure, Animation, Children, Comedy, Fantasy."
    assert t[2] == "The Grumpier Old Men (1995)\nGenres: Comedy, Romance."  # article moved to the front
    assert t[4] == "Unknown Film"  # no year, no genres: just the title
    table = pq.read_table(report.path)
    assert table.column_names == ["movie_id", "text", "text_hash", "n_chars", "has_tmdb", "n_tags"]
    assert table.schema.field("movie_id").type == pa.int32()
    assert pq.read_metadata(report.path).metadata[b"movielens.item_text_template"] == TEMPLATE_VERSION.encode()
    for mid, text, h in zip(*(table.column(c).to_pylist() for c in ("movie_id", "text", "text_hash")), strict=True):
        assert h == hashlib.sha256(text.encode()).hexdigest(), mid


def test_empty_star_tables_and_tags_are_used_when_present(tmp_path, processed):
    star = write_star(tmp_path / "tmdb", {})  # TMDb group ran without data: typed, empty
    con = duck.connect()
    report = build_item_texts(con, movies=processed / "movies.parquet", tags=processed / "tags.parquet",
                              tmdb_dir=star, out_path=tmp_path / "item_text.parquet")
    assert report.sources["tmdb_movie"] == "empty" and not report.tmdb_available
    t = texts(report.path)
    # tags: lower-cased, trimmed, ranked by distinct users (pixar: 2, funny: 1); blank tags ignored
    assert t[1].endswith("\nTags: pixar, funny.")
    assert t[3].endswith("\nTags: heist, classic.")
    assert report.stats["with_tags"] == 2 and report.stats["with_tmdb"] == 0


def test_tmdb_fields_follow_the_template(tmp_path, processed):
    star = write_star(tmp_path / "tmdb", STAR_ROWS)
    con = duck.connect()
    report = build_item_texts(con, movies=processed / "movies.parquet", tags=processed / "tags.parquet",
                              tmdb_dir=star, out_path=tmp_path / "item_text.parquet")
    assert report.tmdb_available and report.stats["with_tmdb"] == 1  # movie 2 has no payload
    assert texts(report.path)[1] == (
        "Toy Story (1995)\n"
        "Genres: Adventure, Animation, Children, Comedy, Fantasy.\n"
        "Directed by John Lasseter.\n"
        "Starring Tom Hanks, Tim Allen, Don Rickles, Extra One, Extra Two.\n"  # top 5 billed, each once
        "Keywords: toy, friendship.\n"  # payload order, empty names dropped
        "Tags: pixar, funny.\n"
        "Led by Woody, Andy's toys live happily."  # whitespace collapsed; empty tagline left out
    )
    assert texts(report.path)[2] == "The Grumpier Old Men (1995)\nGenres: Comedy, Romance."


def test_rebuild_reports_what_changed(tmp_path, processed):
    out = tmp_path / "item_text.parquet"
    con = duck.connect()
    build_item_texts(con, movies=processed / "movies.parquet", tags=processed / "tags.parquet", tmdb_dir=None,
                     out_path=out)
    before = dict(zip(*(pq.read_table(out).column(c).to_pylist() for c in ("movie_id", "text_hash")), strict=True))
    same = build_item_texts(con, movies=processed / "movies.parquet", tags=processed / "tags.parquet",
                            tmdb_dir=None, out_path=out)
    assert same.changes == {"new": 0, "changed": 0, "unchanged": 4, "removed": 0}
    star = write_star(tmp_path / "tmdb", STAR_ROWS)
    changed = build_item_texts(con, movies=processed / "movies.parquet", tags=processed / "tags.parquet",
                               tmdb_dir=star, out_path=out)
    assert changed.changes == {"new": 0, "changed": 1, "unchanged": 3, "removed": 0}
    after = dict(zip(*(pq.read_table(out).column(c).to_pylist() for c in ("movie_id", "text_hash")), strict=True))
    assert [m for m in before if before[m] != after[m]] == [1]
    assert not list(tmp_path.glob(".item_text*"))  # no temporary left behind


def test_missing_movies_table_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize `movies`"):
        build_item_texts(duck.connect(), movies=tmp_path / "nope.parquet", tags=None, tmdb_dir=None,
                         out_path=tmp_path / "x.parquet")
