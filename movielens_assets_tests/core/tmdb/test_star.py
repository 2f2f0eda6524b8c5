"""TMDb star schema built from hand-made payloads shaped like `GET /3/movie/{id}?append_to_response=
credits,keywords,release_dates` (see shared/reference/tmdb-api.md §2)."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_assets.core.data.errors import DataValidationError
from movielens_assets.core.tmdb.landing import LandingZone
from movielens_assets.core.tmdb.records import FetchResult
from movielens_assets.core.tmdb.star import (
    STAR_TABLES,
    build_star_schema,
    check_star_schema,
    failed_checks,
    schema_markdown,
)

T1, T2, T3 = 1_700_000_000.0, 1_700_086_400.0, 1_700_172_800.0
DOCS = Path(__file__).resolve().parents[3] / "docs" / "TMDB.md"


def person(pid: int, name: str, popularity: float, dept: str = "Acting", gender: int = 2) -> dict:
    return {"adult": False, "gender": gender, "id": pid, "known_for_department": dept, "name": name,
            "original_name": name, "popularity": popularity, "profile_path": f"/{pid}.jpg"}


def cast(p: dict, credit_id: str, character: str, order: int, cast_id: int) -> dict:
    return {**p, "cast_id": cast_id, "character": character, "credit_id": credit_id, "order": order}


def crew(p: dict, credit_id: str, department: str, job: str) -> dict:
    return {**p, "credit_id": credit_id, "department": department, "job": job}


NORTON = person(819, "Edward Norton", 26.99)
PITT_OLD = person(287, "Brad Pitt", 45.202)
PITT_NEW = person(287, "Brad Pitt", 50.5)
FINCHER = person(7467, "David Fincher", 18.371, dept="Directing")
PALAHNIUK = person(7468, "Chuck Palahniuk", 0.753, dept="Writing")
KOBAYASHI = person(90, "Satomi Kobayashi", 3.0, gender=1)


def fight_club() -> dict:
    return {
        "adult": False,
        "backdrop_path": "/hZkgoQYus5vegHoetLkCJzb17zJ.jpg",
        "belongs_to_collection": None,
        "budget": 63000000,
        "genres": [{"id": 18, "name": "Drama"}],
        "homepage": "http://www.foxmovies.com/movies/fight-club",
        "id": 550,
        "imdb_id": "tt0137523",
        "origin_country": ["US"],
        "original_language": "en",
        "original_title": "Fight Club",
        "overview": "A ticking-time-bomb insomniac and a slippery soap salesman ...",
        "popularity": 73.433,
        "poster_path": "/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg",
        "production_companies": [
            {"id": 508, "logo_path": "/7PzJ.png", "name": "Regency Enterprises", "origin_country": "US"},
            {"id": 711, "logo_path": "/tEiI.png", "name": "Fox 2000 Pictures", "origin_country": "US"},
            {"id": 20555, "logo_path": "/hD8y.png", "name": "Taurus Film", "origin_country": "DE"},
            {"id": 54051, "logo_path": None, "name": "Atman Entertainment", "origin_country": ""},
        ],
        "production_countries": [
            {"iso_3166_1": "DE", "name": "Germany"},
            {"iso_3166_1": "US", "name": "United States of America"},
        ],
        "release_date": "1999-10-15",
        "revenue": 100853753,
        "runtime": 139,
        "spoken_languages": [{"english_name": "English", "iso_639_1": "en", "name": "English"}],
        "status": "Released",
        "tagline": "Mischief. Mayhem. Soap.",
        "title": "Fight Club",
        "video": False,
        "vote_average": 8.433,
        "vote_count": 26279,
        "softcore": False,
        "some_future_field": {"nested": [1, 2]},  # unknown keys are ignored
        "credits": {
            "cast": [
                cast(NORTON, "52fe4250c3a36847f80149f3", "The Narrator", 0, 4),
                cast(PITT_OLD, "52fe4250c3a36847f80149f7", "Tyler Durden", 1, 5),
                cast(FINCHER, "aaaa4250c3a36847f80149f7", "Cameo", 30, 99),
            ],
            "crew": [
                crew(FINCHER, "631f0289568463007bbe28a5", "Directing", "Director"),
                crew(FINCHER, "631f0289568463007bbe28a6", "Production", "Producer"),
                crew(PALAHNIUK, "52fe4250c3a36847f8014a4d", "Writing", "Novel"),
            ],
        },
        "keywords": {"keywords": [
            {"id": 818, "name": "based on novel or book"},
            {"id": 825, "name": "support group"},
            {"id": 851, "name": "dual identity"},
        ]},
        "release_dates": {"results": [
            {"iso_3166_1": "US", "release_dates": [
                {"certification": "", "descriptors": [], "iso_639_1": "", "note": "CMJ Film Festival",
                 "release_date": "1999-09-21T00:00:00.000Z", "type": 1},
                {"certification": "R", "descriptors": ["violence"], "iso_639_1": "",
                 "release_date": "1999-10-15T00:00:00.000Z", "type": 3},  # note absent
            ]},
            {"iso_3166_1": "NL", "release_dates": [
                {"certification": "16", "descriptors": [], "iso_639_1": "", "note": "DVD",
                 "release_date": "2004-08-04T00:00:00.000Z", "type": 5},
            ]},
        ]},
    }


def seven() -> dict:
    """In a collection, unknowns as TMDb sends them (0 / ""), Brad Pitt fetched later."""
    return {
        "adult": False, "backdrop_path": None,
        "belongs_to_collection": {"id": 1241, "name": "Some Collection", "poster_path": "/c.jpg",
                                  "backdrop_path": None},
        "budget": 0, "genres": [{"id": 18, "name": "Drama"}, {"id": 28, "name": "Action"}],
        "homepage": "", "id": 10, "imdb_id": "tt0114369", "origin_country": ["US", "GB"],
        "original_language": "en", "original_title": "Se7en", "overview": "", "popularity": 1.5,
        "poster_path": "/p.jpg",
        "production_companies": [{"id": 508, "logo_path": None, "name": "Regency Enterprises",
                                  "origin_country": "US"}],
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "release_date": "", "revenue": 0, "runtime": 0,
        "spoken_languages": [{"english_name": "English", "iso_639_1": "en", "name": "English"},
                             {"english_name": "French", "iso_639_1": "fr", "name": "Français"}],
        "status": "Released", "tagline": "", "title": "Se7en", "video": False,
        "vote_average": 8.4, "vote_count": 20000,
        "credits": {"cast": [cast(PITT_NEW, "52fe4211c3a36847f8001111", "Mills", 0, 1)],
                    "crew": [crew(FINCHER, "52fe4211c3a36847f8002222", "Directing", "Director")]},
        "keywords": {"keywords": [{"id": 818, "name": "based on novel or book"}]},
        "release_dates": {"results": []},
    }


def minimal() -> dict:
    """Most optional keys missing: tolerated as NULL / empty."""
    return {"id": 20, "title": "Minimal", "overview": "Short.", "runtime": None}


def found_via_find() -> dict:
    return {"id": 60, "title": "Shoplifters", "original_language": "ja", "overview": "A family.",
            "genres": [{"id": 35, "name": "Comedy"}], "release_date": "2018-06-08",
            "credits": {"cast": [cast(KOBAYASHI, "5b0000000000000000000001", "Hatsue", 0, 1)]}}


def links_table() -> pa.Table:
    return pa.table({
        "movie_id": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9], pa.int32()),
        "imdb_id": pa.array([f"tt{i:07d}" for i in range(1, 10)], pa.string()),
        # 2 and 3 share tmdb 10; 5 -> a 404; 6, 7 have none (7 resolved via /find);
        # 8 -> a failed fetch; 9 -> never fetched
        "tmdb_id": pa.array([550, 10, 10, 20, 30, None, None, 40, 70], pa.int32()),
    })


RESOLVED = {7: 60, 1: 551, 12345: 1}  # 1: conflicts with links (links win); 12345: unknown movie


@pytest.fixture()
def landing(tmp_path: Path) -> LandingZone:
    zone = LandingZone(tmp_path / "raw" / "tmdb")
    with zone.writer(flush_every=2) as w:
        w.append(FetchResult(550, 200, T1, fight_club()))
        w.append(FetchResult(10, 200, T2, seven()))
        w.append(FetchResult(20, 200, T1, minimal()))
        w.append(FetchResult(30, 404, T1, None, "404 status_code=34"))
        w.append(FetchResult(40, 502, T1, None, "HTTP 502 after 5 attempts"))
        w.append(FetchResult(60, 200, T1, found_via_find()))
        w.append(FetchResult(999, 200, T1, {"id": 999, "title": "Not linked"}))
    return zone


def build(landing: LandingZone, out: Path, **kwargs) -> dict:
    return build_star_schema(landing, links_table(), out, resolved=RESOLVED, **kwargs)


def read(out: Path, table: str) -> pa.Table:
    return pq.read_table(out / f"{table}.parquet")


def rows(out: Path, table: str) -> list[dict]:
    return read(out, table).to_pylist()


EXPECTED_ROWS = {
    "tmdb_movie": 4,  # 550, 10, 20, 60 (999 is not linked; 30 is a 404; 40 failed)
    "tmdb_person": 5,  # Norton, Pitt, Fincher, Palahniuk, Kobayashi
    "tmdb_genre": 3,
    "tmdb_keyword": 3,
    "tmdb_company": 4,
    "tmdb_country": 4,  # DE, US (named) + GB (origin only) + NL (release only)
    "tmdb_language": 3,  # en, fr (spoken) + ja (original_language only)
    "tmdb_collection": 1,
    "tmdb_cast": 5,
    "tmdb_crew": 4,
    "tmdb_movie_genre": 4,
    "tmdb_movie_keyword": 4,
    "tmdb_movie_company": 5,
    "tmdb_movie_country": 6,  # 550: prod DE, US + origin US; 10: prod US + origin US, GB
    "tmdb_movie_language": 3,
    "tmdb_release_date": 3,
    "movie_tmdb": 9,
}


def test_row_counts_paths_and_checks(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "processed" / "tmdb"
    report = build(landing, out)

    assert {k: v["rows"] for k, v in report.items() if k != "coverage"} == EXPECTED_ROWS
    assert set(EXPECTED_ROWS) == set(STAR_TABLES)
    for name, entry in report.items():
        if name != "coverage":
            assert Path(entry["path"]) == out / f"{name}.parquet"
            assert pq.read_metadata(entry["path"]).num_rows == entry["rows"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in STAR_TABLES)

    results = check_star_schema(out)
    assert failed_checks(results) == []
    names = {r.name for r in results}
    assert {f"pk:{t}" for t in STAR_TABLES} <= names
    assert {f"schema:{t}" for t in STAR_TABLES} <= names
    assert "fk:tmdb_cast.person_id->tmdb_person" in names
    assert "fk:movie_tmdb.tmdb_id->tmdb_movie" in names
    assert "movie_tmdb:consistency" in names


def test_types_match_spec(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    build(landing, out)
    for name, spec in STAR_TABLES.items():
        schema = pq.read_schema(out / spec.file_name)
        assert [(f.name, f.type) for f in schema] == [(c.name, c.type) for c in spec.columns], name
    movie = read(out, "tmdb_movie").schema
    assert movie.field("tmdb_id").type == pa.int32()
    assert movie.field("release_date").type == pa.date32()
    assert movie.field("origin_country").type == pa.list_(pa.string())
    assert movie.field("budget").type == pa.int64()
    assert movie.field("fetched_at").type == pa.timestamp("us")
    assert read(out, "tmdb_release_date").schema.field("release_date").type == pa.timestamp("us")
    assert read(out, "tmdb_release_date").schema.field("descriptors").type == pa.list_(pa.string())
    assert read(out, "tmdb_cast").schema.field("person_id").type == pa.int32()
    assert read(out, "movie_tmdb").schema.field("movie_id").type == pa.int32()


def test_movie_values_and_null_handling(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    build(landing, out)
    movies = {r["tmdb_id"]: r for r in rows(out, "tmdb_movie")}
    assert sorted(movies) == [10, 20, 60, 550]

    fc = movies[550]
    assert fc["release_date"] == date(1999, 10, 15)
    assert (fc["runtime"], fc["budget"], fc["revenue"]) == (139, 63000000, 100853753)
    assert fc["origin_country"] == ["US"] and fc["collection_id"] is None
    assert fc["imdb_id"] == "tt0137523" and fc["softcore"] is False and fc["adult"] is False
    assert fc["fetched_at"] == datetime.fromtimestamp(T1, UTC).replace(tzinfo=None)
    assert fc["vote_count"] == 26279 and fc["vote_average"] == pytest.approx(8.433)

    se7en = movies[10]
    assert se7en["release_date"] is None  # ""
    assert (se7en["runtime"], se7en["budget"], se7en["revenue"]) == (None, None, None)  # 0 = unknown
    assert (se7en["overview"], se7en["tagline"], se7en["homepage"]) == (None, None, None)  # ""
    assert se7en["collection_id"] == 1241
    assert se7en["origin_country"] == ["US", "GB"]

    mini = movies[20]
    assert mini["title"] == "Minimal" and mini["overview"] == "Short."
    assert mini["release_date"] is None and mini["runtime"] is None and mini["softcore"] is None
    assert mini["origin_country"] == [] and mini["original_language"] is None

    assert rows(out, "tmdb_collection") == [
        {"collection_id": 1241, "name": "Some Collection", "poster_path": "/c.jpg", "backdrop_path": None}]
    companies = {r["company_id"]: r for r in rows(out, "tmdb_company")}
    assert companies[54051]["origin_country"] is None and companies[20555]["origin_country"] == "DE"
    assert rows(out, "tmdb_country") == [
        {"iso_3166_1": "DE", "name": "Germany"}, {"iso_3166_1": "GB", "name": None},
        {"iso_3166_1": "NL", "name": None}, {"iso_3166_1": "US", "name": "United States of America"}]
    assert rows(out, "tmdb_language") == [
        {"iso_639_1": "en", "english_name": "English", "name": "English"},
        {"iso_639_1": "fr", "english_name": "French", "name": "Français"},
        {"iso_639_1": "ja", "english_name": None, "name": None}]
    assert {(r["tmdb_id"], r["iso_3166_1"], r["role"]) for r in rows(out, "tmdb_movie_country")} == {
        (550, "DE", "production"), (550, "US", "production"), (550, "US", "origin"),
        (10, "US", "production"), (10, "US", "origin"), (10, "GB", "origin")}
    assert [(r["genre_id"], r["position"]) for r in rows(out, "tmdb_movie_genre") if r["tmdb_id"] == 10] == [
        (18, 0), (28, 1)]


def test_credits_persons_and_release_dates(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    build(landing, out)
    crew_rows = rows(out, "tmdb_crew")
    fincher_550 = sorted(r["job"] for r in crew_rows if r["person_id"] == 7467 and r["tmdb_id"] == 550)
    assert fincher_550 == ["Director", "Producer"]  # one person, two jobs, two rows
    cast_rows = {r["credit_id"]: r for r in rows(out, "tmdb_cast")}
    assert cast_rows["aaaa4250c3a36847f80149f7"]["person_id"] == 7467  # also in cast
    assert cast_rows["52fe4250c3a36847f80149f7"] == {
        "credit_id": "52fe4250c3a36847f80149f7", "tmdb_id": 550, "person_id": 287,
        "character": "Tyler Durden", "cast_order": 1, "cast_id": 5}

    persons = {r["person_id"]: r for r in rows(out, "tmdb_person")}
    assert sorted(persons) == [90, 287, 819, 7467, 7468]
    assert persons[287]["popularity"] == 50.5  # from the later fetched payload (Se7en, T2)
    assert persons[287]["fetched_at"] == datetime.fromtimestamp(T2, UTC).replace(tzinfo=None)
    assert persons[90]["gender"] == 1 and persons[7467]["known_for_department"] == "Directing"

    releases = rows(out, "tmdb_release_date")
    assert [(r["iso_3166_1"], r["type"], r["position"]) for r in releases] == [
        ("US", 1, 0), ("US", 3, 1), ("NL", 5, 2)]
    assert releases[0]["release_date"] == datetime(1999, 9, 21)
    assert releases[0]["certification"] is None and releases[0]["iso_639_1"] is None
    assert releases[1]["note"] is None and releases[1]["descriptors"] == ["violence"]
    assert releases[2]["note"] == "DVD"


def test_movie_tmdb_bridge_shared_ids_and_coverage(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    report = build(landing, out)
    bridge = {r["movie_id"]: r for r in rows(out, "movie_tmdb")}
    assert sorted(bridge) == list(range(1, 10))
    assert bridge[2]["tmdb_id"] == bridge[3]["tmdb_id"] == 10
    assert bridge[2]["tmdb_id_shared"] and bridge[3]["tmdb_id_shared"]  # both kept, both flagged
    assert not any(bridge[m]["tmdb_id_shared"] for m in (1, 4, 5, 6, 7, 8, 9))
    assert bridge[1] == {"movie_id": 1, "imdb_id": "tt0000001", "tmdb_id": 550, "source": "links",
                         "landing_outcome": "ok", "has_payload": True, "tmdb_id_shared": False}
    assert (bridge[6]["tmdb_id"], bridge[6]["source"], bridge[6]["has_payload"]) == (None, None, False)
    assert (bridge[7]["tmdb_id"], bridge[7]["source"], bridge[7]["has_payload"]) == (60, "find", True)
    assert (bridge[5]["landing_outcome"], bridge[5]["has_payload"]) == ("not_found", False)
    assert (bridge[8]["landing_outcome"], bridge[8]["has_payload"]) == ("failed", False)
    assert (bridge[9]["landing_outcome"], bridge[9]["has_payload"]) == (None, False)

    cov = report["coverage"]
    assert cov == {
        "movies": 9, "with_tmdb_id": 8, "without_tmdb_id": 1, "tmdb_id_from_links": 7,
        "tmdb_id_from_find": 1, "with_payload": 5, "with_overview": 3, "not_found": 1, "failed": 1,
        "not_fetched": 1, "movies_with_shared_tmdb_id": 2, "shared_tmdb_ids": 1,
        "with_payload_share": pytest.approx(5 / 9), "with_overview_share": pytest.approx(3 / 9),
        "payloads_used": 4, "resolved_conflicts": 1, "resolved_unknown_movies": 1,
        "duplicate_credit_ids_dropped": 0,
    }
    coverage_check = next(r for r in check_star_schema(out) if r.name == "coverage")
    assert coverage_check.metadata["with_payload"] == 5 and coverage_check.metadata["shared_tmdb_ids"] == 1


def test_rebuild_is_idempotent(landing: LandingZone, tmp_path: Path) -> None:
    def digest(out: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    a, b = tmp_path / "a", tmp_path / "b"
    first = build(landing, a)
    build(LandingZone(landing.root), b, batch_size=1)  # fresh reader, tiny batches
    assert digest(a) == digest(b)
    again = build(landing, a)
    assert again == first
    assert digest(a) == digest(b)
    assert not [p for p in a.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_refreshed_payload_replaces_the_old_one(landing: LandingZone, tmp_path: Path) -> None:
    newer = fight_club()
    newer["title"] = "Fight Club (refreshed)"
    newer["credits"]["cast"] = newer["credits"]["cast"][:1]
    with landing.writer() as w:
        w.append(FetchResult(550, 200, T3, newer))
        w.append(FetchResult(10, 503, T3 + 1, None, "HTTP 503"))  # a failed refresh hides nothing
    out = tmp_path / "star"
    build(landing, out)
    movies = {r["tmdb_id"]: r for r in rows(out, "tmdb_movie")}
    assert movies[550]["title"] == "Fight Club (refreshed)"
    assert movies[10]["title"] == "Se7en"
    assert sorted(r["person_id"] for r in rows(out, "tmdb_cast") if r["tmdb_id"] == 550) == [819]
    assert {r["person_id"]: r["popularity"] for r in rows(out, "tmdb_person")}[287] == 50.5  # Se7en only


def test_links_from_parquet_path(landing: LandingZone, tmp_path: Path) -> None:
    path = tmp_path / "links.parquet"
    pq.write_table(links_table(), path)
    report = build_star_schema(landing, path, tmp_path / "star")
    assert report["movie_tmdb"]["rows"] == 9
    assert report["coverage"]["tmdb_id_from_find"] == 0 and report["coverage"]["with_payload"] == 4
    with pytest.raises(DataValidationError, match="links file not found"):
        build_star_schema(landing, tmp_path / "missing.parquet", tmp_path / "x")
    with pytest.raises(DataValidationError, match="missing column"):
        build_star_schema(landing, links_table().drop(["imdb_id"]), tmp_path / "x")
    dup = pa.concat_tables([links_table(), links_table().slice(0, 1)])
    with pytest.raises(DataValidationError, match="movie_id is not unique"):
        build_star_schema(landing, dup, tmp_path / "x")


def _with_bad(tmp_path: Path, payload: dict, tmdb_id: int = 550) -> LandingZone:
    zone = LandingZone(tmp_path / f"bad-{len(list(tmp_path.iterdir()))}")
    with zone.writer() as w:
        w.append(FetchResult(tmdb_id, 200, T1, payload))
    return zone


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("id"), "'id'"),
        (lambda p: p.update(id="550"), "'id'"),
        (lambda p: p.update(id=551), "'id' is 551"),
        (lambda p: p["genres"].append({"name": "no id"}), "'genres[].id'"),
        (lambda p: p["credits"]["crew"][0].pop("credit_id"), "'credits.crew[].credit_id'"),
        (lambda p: p["credits"]["cast"][1].update(id=True), "'credits.cast[].id'"),
        (lambda p: p.update(runtime="139 min"), "'runtime'"),
        (lambda p: p.update(runtime=139.5), "'runtime'"),
        (lambda p: p.update(vote_count=2**40), "'vote_count'"),
        (lambda p: p.update(genres="Drama"), "'genres'"),
        (lambda p: p.update(release_date="15/10/1999"), "'release_date'"),
        (lambda p: p["credits"]["cast"][0].update(popularity="high"), "'credits.cast/crew[].popularity'"),
        (lambda p: p["release_dates"]["results"][0]["release_dates"][0].update(type="1"),
         "'release_dates.results[].release_dates[].type'"),
    ],
)
def test_bad_payload_names_movie_chunk_and_field(tmp_path: Path, mutate, field: str) -> None:
    payload = copy.deepcopy(fight_club())
    mutate(payload)
    zone = _with_bad(tmp_path, payload)
    chunk = zone.chunk_paths()[0].name
    with pytest.raises(DataValidationError) as info:
        build_star_schema(zone, links_table(), tmp_path / "star")
    message = str(info.value)
    assert "tmdb_id 550" in message and chunk in message and field in message, message


def test_integral_float_ids_in_scalars_are_accepted(tmp_path: Path) -> None:
    payload = fight_club()
    payload["runtime"] = 139.0  # JSON from other tools may write integral floats
    zone = _with_bad(tmp_path, payload)
    build_star_schema(zone, links_table(), tmp_path / "star")
    assert rows(tmp_path / "star", "tmdb_movie")[0]["runtime"] == 139


def test_check_detects_broken_fk_and_duplicate_pk(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    build(landing, out)
    assert failed_checks(check_star_schema(out)) == []

    cast_table = read(out, "tmdb_cast")
    person_ids = cast_table["person_id"].to_pylist()
    person_ids[0] = 424242
    pq.write_table(cast_table.set_column(2, cast_table.schema.field("person_id"),
                                         pa.array(person_ids, pa.int32())), out / "tmdb_cast.parquet")
    genre = read(out, "tmdb_genre")
    pq.write_table(pa.concat_tables([genre, genre.slice(0, 1)]), out / "tmdb_genre.parquet")
    bridge = read(out, "movie_tmdb")
    flags = bridge["tmdb_id_shared"].to_pylist()
    flags[0] = not flags[0]
    pq.write_table(bridge.set_column(6, bridge.schema.field("tmdb_id_shared"), pa.array(flags)),
                   out / "movie_tmdb.parquet")
    (out / "tmdb_keyword.parquet").unlink()

    failed = {r.name: r for r in failed_checks(check_star_schema(out))}
    assert set(failed) == {
        "fk:tmdb_cast.person_id->tmdb_person",
        "pk:tmdb_genre",
        "movie_tmdb:consistency",
        "schema:tmdb_keyword",
        "fk:tmdb_movie_keyword.keyword_id->tmdb_keyword",
    }
    assert failed["fk:tmdb_cast.person_id->tmdb_person"].metadata["orphans_sample"] == [[424242]]
    assert failed["pk:tmdb_genre"].metadata["duplicates"] == 1
    assert failed["movie_tmdb:consistency"].metadata["wrong_tmdb_id_shared"] == 1


def test_check_detects_schema_drift(landing: LandingZone, tmp_path: Path) -> None:
    out = tmp_path / "star"
    build(landing, out)
    movie = read(out, "tmdb_movie")
    pq.write_table(movie.set_column(0, "tmdb_id", movie["tmdb_id"].cast(pa.int64())), out / "tmdb_movie.parquet")
    failed = [r.name for r in failed_checks(check_star_schema(out))]
    assert failed == ["schema:tmdb_movie"]


def test_empty_landing_builds_empty_tables(tmp_path: Path) -> None:
    report = build_star_schema(LandingZone(tmp_path / "none"), links_table(), tmp_path / "star")
    assert report["tmdb_movie"]["rows"] == 0 and report["movie_tmdb"]["rows"] == 9
    assert report["coverage"]["with_payload"] == 0 and report["coverage"]["not_fetched"] == 7
    assert failed_checks(check_star_schema(tmp_path / "star")) == []


def test_docs_embed_the_generated_schema() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert schema_markdown() in text, "docs/TMDB.md is stale: paste star.schema_markdown() into it"
