"""CSV -> Parquet ingestion: types, parsing, ordering, and every bad-input case with its message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from movielens_assets.core.data import duck, ingest, quality
from movielens_assets.core.data.errors import DataValidationError

RATINGS_OK = "userId,movieId,rating,timestamp\n2,10,4.0,300\n1,10,0.5,200\n1,20,5.0,100\n1,30,3.5,100\n"
MOVIES_OK = (
    "movieId,title,genres\n"
    '10,"American President, The (1995)",Comedy|Drama|Romance\n'
    "20,Untitled Movie,(no genres listed)\n"
    "30,Babylon 5 (1994-1998) ,Sci-Fi\n"
)
LINKS_OK = "movieId,imdbId,tmdbId\n10,112346,9087\n20,12345678,\n30,0000042,42\n"
TAGS_OK = 'userId,movieId,tag,timestamp\n1,10,"funny, sweet",150\n1,20,dull,110\n'


@pytest.fixture
def con():
    c = duck.connect()
    yield c
    c.close()


def write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    return tmp_path


def rows(con, path: Path) -> list[tuple]:
    return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def run(con, tmp_path: Path, table: str) -> ingest.IngestResult:
    return ingest.ingest_csv(con, ingest.TABLES[table], tmp_path, tmp_path / "out" / f"{table}.parquet",
                             dataset="test")


def test_ratings_typed_sorted_and_tagged_with_dataset(con, tmp_path):
    write(tmp_path, ratings=RATINGS_OK)
    res = run(con, tmp_path, "ratings")
    assert res.rows == 4
    assert duck.parquet_schema(con, res.path) == [
        ("user_id", "INTEGER"), ("movie_id", "INTEGER"), ("rating", "FLOAT"), ("timestamp", "TIMESTAMP"),
    ]
    epoch = dt.datetime(1970, 1, 1)
    got = rows(con, res.path)
    # sorted by (user_id, timestamp); the order of equal timestamps is unspecified (no tie-break key, see RATINGS)
    assert [(u, t) for u, _, _, t in got] == sorted((u, t) for u, _, _, t in got)
    assert sorted(got) == [
        (1, 10, 0.5, epoch + dt.timedelta(seconds=200)),
        (1, 20, 5.0, epoch + dt.timedelta(seconds=100)),
        (1, 30, 3.5, epoch + dt.timedelta(seconds=100)),
        (2, 10, 4.0, epoch + dt.timedelta(seconds=300)),
    ]
    assert [(u, t) for u, _, _, t in got][:2] == [(1, epoch + dt.timedelta(seconds=100))] * 2
    assert duck.parquet_kv_metadata(con, res.path)["movielens.dataset"] == "test"


def test_movies_year_and_genres(con, tmp_path):
    write(tmp_path, movies=MOVIES_OK)
    res = run(con, tmp_path, "movies")
    assert rows(con, res.path) == [
        (10, "American President, The (1995)", 1995, ["Comedy", "Drama", "Romance"]),
        (20, "Untitled Movie", None, []),
        (30, "Babylon 5 (1994-1998)", 1994, ["Sci-Fi"]),
    ]
    assert dict(duck.parquet_schema(con, res.path))["genres"] == "VARCHAR[]"


def test_links_imdb_padding_and_nullable_tmdb(con, tmp_path):
    write(tmp_path, links=LINKS_OK)
    res = run(con, tmp_path, "links")
    assert rows(con, res.path) == [(10, "tt0112346", 9087), (20, "tt12345678", None), (30, "tt0000042", 42)]


def test_tags_quoted_commas(con, tmp_path):
    write(tmp_path, tags=TAGS_OK)
    res = run(con, tmp_path, "tags")
    assert [r[2] for r in rows(con, res.path)] == ["dull", "funny, sweet"]


@pytest.mark.parametrize("table", ["tags", "links"])
def test_optional_file_absent_gives_empty_typed_table_with_note(con, tmp_path, table):
    res = run(con, tmp_path, table)
    assert res.rows == 0 and res.note and f"{table}.csv is absent" in res.note
    assert duck.parquet_schema(con, res.path)[0] == ("movie_id" if table == "links" else "user_id", "INTEGER")
    assert "movielens.note" in duck.parquet_kv_metadata(con, res.path)


@pytest.mark.parametrize("table", ["ratings", "movies"])
def test_required_file_missing(con, tmp_path, table):
    with pytest.raises(DataValidationError, match=rf"{table}\.csv: file not found"):
        run(con, tmp_path, table)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("userId,movieId,score,timestamp\n1,2,4.0,5\n",
         r"line 1: expected the header 'userId,movieId,rating,timestamp', found 'userId,movieId,score,timestamp'"),
        ("1,2,4.0,5\n3,4,4.0,5\n", r"line 1: expected the header .*header line seems to be missing"),
        ("", r"ratings\.csv: the file is empty"),
        ("userId,movieId,rating,timestamp\n", r"ratings\.csv: no data rows after the header"),
    ],
    ids=["wrong-header", "missing-header", "empty-file", "header-only"],
)
def test_header_and_empty_errors(con, tmp_path, text, pattern):
    write(tmp_path, ratings=text)
    with pytest.raises(DataValidationError, match=pattern):
        run(con, tmp_path, "ratings")


def test_malformed_rows_named_by_line(con, tmp_path):
    write(tmp_path, ratings="userId,movieId,rating,timestamp\n1,2,4.0,5\n1,abc,3.0,6\n2,3\n3,4,5.0,7,9\n")
    with pytest.raises(DataValidationError) as err:
        run(con, tmp_path, "ratings")
    msg = str(err.value)
    assert "3 malformed row(s)" in msg
    assert "line 3: cast in column movieId" in msg and "'1,abc,3.0,6'" in msg
    assert "line 4: missing columns" in msg
    assert "line 5: too many columns" in msg


def test_non_numeric_user_id(con, tmp_path):
    write(tmp_path, ratings="userId,movieId,rating,timestamp\nu1,2,4.0,5\n")
    with pytest.raises(DataValidationError, match=r"line 2: cast in column userId.*INTEGER"):
        run(con, tmp_path, "ratings")


def test_rating_outside_domain(con, tmp_path):
    write(tmp_path, ratings="userId,movieId,rating,timestamp\n1,2,4.0,5\n1,3,5.5,6\n1,4,3.25,7\n1,5,0,8\n")
    with pytest.raises(DataValidationError) as err:
        run(con, tmp_path, "ratings")
    msg = str(err.value)
    assert "3 rating(s) outside {0.5, 1.0, 1.5, ..., 5.0}" in msg
    assert "line 3: rating=5.5" in msg and "line 4: rating=3.25" in msg and "line 5: rating=0.0" in msg


_REAL_DUPLICATE_PAIRS = quality.duplicate_pairs


@pytest.mark.parametrize("streaming_from", [0, ingest.STREAMING_DUP_CHECK_MIN_ROWS])  # both checks, same message
def test_duplicate_user_movie(con, tmp_path, monkeypatch, streaming_from):
    monkeypatch.setattr(ingest, "STREAMING_DUP_CHECK_MIN_ROWS", streaming_from)
    calls = []
    monkeypatch.setattr(quality, "duplicate_pairs", lambda *a, **k: calls.append(a) or _REAL_DUPLICATE_PAIRS(*a, **k))
    write(tmp_path, ratings="userId,movieId,rating,timestamp\n1,2,4.0,5\n1,3,3.0,6\n1,2,2.0,9\n")
    with pytest.raises(DataValidationError,
                       match=r"1 duplicated \(user_id, movie_id\) key\(s\).*user_id=1, movie_id=2 on lines 2, 4"):
        run(con, tmp_path, "ratings")
    assert bool(calls) == (streaming_from == 0)


def test_empty_required_value(con, tmp_path):
    write(tmp_path, ratings="userId,movieId,rating,timestamp\n1,2,4.0,5\n1,,3.0,6\n")
    with pytest.raises(DataValidationError,
                       match=r"1 row\(s\) with an empty value in required field\(s\) movie_id \(line 3\)"):
        run(con, tmp_path, "ratings")


def test_duplicate_movie_id(con, tmp_path):
    write(tmp_path, movies="movieId,title,genres\n1,A (1990),Drama\n1,B (1991),Comedy\n")
    with pytest.raises(DataValidationError, match=r"duplicated \(movie_id\).*movie_id=1 on lines 2, 3"):
        run(con, tmp_path, "movies")


def test_failure_keeps_previous_output_and_leaves_no_temp_file(con, tmp_path):
    write(tmp_path, ratings=RATINGS_OK)
    good = run(con, tmp_path, "ratings")
    before = good.path.read_bytes()
    write(tmp_path, ratings="userId,movieId,rating,timestamp\n1,2,4.0,5\n1,2,4.0,6\n")
    with pytest.raises(DataValidationError):
        run(con, tmp_path, "ratings")
    assert good.path.read_bytes() == before
    assert sorted(p.name for p in good.path.parent.iterdir()) == ["ratings.parquet"]


def test_duplicate_pairs_fast_path_and_unsorted_fallback(con, tmp_path):
    """The streaming check finds duplicates across batch boundaries and falls back on unsorted files."""

    def write_pairs(name: str, pairs: list[tuple[int, int]]) -> Path:
        path = tmp_path / name
        values = ", ".join(f"({u}, {m})" for u, m in pairs)
        con.execute(f"COPY (SELECT col0::INTEGER AS user_id, col1::INTEGER AS movie_id FROM (VALUES {values})) "
                    f"TO '{path}' (FORMAT parquet)")
        return path

    sorted_ok = write_pairs("ok.parquet", [(1, 5), (1, 6), (2, 5), (2, 7), (2, 6), (3, 5)])
    assert quality.duplicate_pairs(con, sorted_ok, "user_id", "movie_id", batch_rows=2).ok
    # user 2 spans the batch boundary (batches of 2 rows): (2, 5) appears in two different batches
    sorted_dup = write_pairs("dup.parquet", [(1, 5), (2, 5), (2, 7), (2, 5), (3, 1)])
    v = quality.duplicate_pairs(con, sorted_dup, "user_id", "movie_id", batch_rows=2)
    assert v.count == 1 and v.examples[0]["user_id"] == 2 and v.examples[0]["movie_id"] == 5
    unsorted_dup = write_pairs("unsorted.parquet", [(2, 5), (1, 5), (2, 5)])
    assert quality.duplicate_pairs(con, unsorted_dup, "user_id", "movie_id", batch_rows=2).count == 1
    # packing (user << 32 | movie as uint32) must not make distinct pairs collide, negative ids included
    neg = write_pairs("neg.parquet", [(1, -1), (1, 2147483647), (2, -1)])
    assert quality.duplicate_pairs(con, neg, "user_id", "movie_id").ok
    # 32-bit packing (user offset in the batch << bits | movie offset) only when it fits; else 64-bit keys
    wide = [(1, 0), (1, (1 << 20) - 1), (4097, 0), (4097, (1 << 20) - 1)]  # 4096 << 20 would wrap to 0
    assert quality.duplicate_pairs(con, write_pairs("wide.parquet", wide), "user_id", "movie_id").ok
    v = quality.duplicate_pairs(con, write_pairs("wide_dup.parquet", [*wide, (4097, 0)]), "user_id", "movie_id")
    assert v.count == 1 and (v.examples[0]["user_id"], v.examples[0]["movie_id"]) == (4097, 0)
    extreme = [(-2147483648, 3), (0, 3), (2147483647, 3)]  # the user span overflows int32 arithmetic
    assert quality.duplicate_pairs(con, write_pairs("extreme.parquet", extreme), "user_id", "movie_id").ok
    narrow = [(7, 100), (7, 101), (8, 100), (9, 101), (9, 100), (9, 101)]  # the 32-bit path
    v = quality.duplicate_pairs(con, write_pairs("narrow.parquet", narrow), "user_id", "movie_id")
    assert v.count == 1 and (v.examples[0]["user_id"], v.examples[0]["movie_id"]) == (9, 101)


@pytest.mark.parametrize("table, text, expected", [
    ("ratings", "userId,movieId,rating,timestamp\n1,2,4.0,5\n0,3,3.0,6\n1,-4,2.0,7\n",
     ["2 row(s) with a zero or negative id in (user_id, movie_id)", "line 3: user_id=0, movie_id=3",
      "line 4: user_id=1, movie_id=-4"]),
    ("tags", "userId,movieId,tag,timestamp\n1,2,a,5\n-7,2,b,6\n", ["line 3: user_id=-7, movie_id=2"]),
    ("movies", "movieId,title,genres\n1,A (1990),Drama\n0,B (1991),Comedy\n", ["line 3: movie_id=0"]),
    ("links", "movieId,imdbId,tmdbId\n1,112346,9087\n-2,12345678,\n", ["line 3: movie_id=-2"]),
])
def test_zero_or_negative_ids_are_refused_naming_the_line(con, tmp_path, table, text, expected):
    """MovieLens ids are positive integers: zero or negative is an error naming the file, line and value, and
    the previously stored table stays untouched."""
    good = {"ratings": RATINGS_OK, "tags": TAGS_OK, "movies": MOVIES_OK, "links": LINKS_OK}[table]
    write(tmp_path, **{table: good})
    stored = run(con, tmp_path, table).path
    before = stored.read_bytes()
    write(tmp_path, **{table: text})
    with pytest.raises(DataValidationError) as err:
        run(con, tmp_path, table)
    msg = str(err.value)
    assert f"{table}.csv" in msg and "expected positive integers" in msg
    for part in expected:
        assert part in msg, msg
    assert stored.read_bytes() == before
    assert sorted(p.name for p in stored.parent.iterdir()) == [f"{table}.parquet"]


def test_positive_ids_are_a_verified_rule_of_every_table():
    for name, spec in ingest.TABLES.items():
        rules = {v.rule for v in ingest.verified_rules(spec)}
        assert quality.positive_rule(spec.positive) in rules, name
        assert "movie_id" in spec.positive
    assert ingest.TABLES["ratings"].positive == ("user_id", "movie_id")
