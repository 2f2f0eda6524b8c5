"""Synthetic TMDb movie-detail payloads: the documented v3 shape, links consistency, genre signal."""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from movielens_assets.core.data.synthetic import generate_movielens, parse_synthetic_name
from movielens_assets.core.data.synthetic.tmdb import TMDB_FILE, iter_tmdb_payloads
from movielens_assets.core.data.synthetic.tmdb_vocab import VOCABULARY
from movielens_assets.core.data.synthetic.tmdb_words import LEXICON, ML_TO_TMDB_GENRES, TMDB_GENRES

NULL = type(None)
# top-level fields of GET /movie/{id}?append_to_response=credits,keywords,release_dates (tmdb-api.md §2.1-2.2)
TOP_LEVEL: dict[str, tuple[type, ...]] = {
    "adult": (bool,), "backdrop_path": (str, NULL), "belongs_to_collection": (dict, NULL), "budget": (int,),
    "genres": (list,), "homepage": (str,), "id": (int,), "imdb_id": (str, NULL), "origin_country": (list,),
    "original_language": (str,), "original_title": (str,), "overview": (str,), "popularity": (float, int),
    "poster_path": (str, NULL), "production_companies": (list,), "production_countries": (list,),
    "release_date": (str,), "revenue": (int,), "runtime": (int, NULL), "spoken_languages": (list,),
    "status": (str,), "tagline": (str,), "title": (str,), "video": (bool,), "vote_average": (float, int),
    "vote_count": (int,), "credits": (dict,), "keywords": (dict,), "release_dates": (dict,),
}
PERSON = {
    "adult": (bool,), "gender": (int,), "id": (int,), "known_for_department": (str,), "name": (str,),
    "original_name": (str,), "popularity": (float, int), "profile_path": (str, NULL), "credit_id": (str,),
}
CAST = {**PERSON, "cast_id": (int,), "character": (str,), "order": (int,)}
CREW = {**PERSON, "department": (str,), "job": (str,)}
COLLECTION = {"id": (int,), "name": (str,), "poster_path": (str, NULL), "backdrop_path": (str, NULL)}
COMPANY = {"id": (int,), "logo_path": (str, NULL), "name": (str,), "origin_country": (str,)}
RELEASE = {"certification": (str,), "descriptors": (list,), "iso_639_1": (str,), "note": (str,),
           "release_date": (str,), "type": (int,)}
STATUSES = {"Rumored", "Planned", "In Production", "Post Production", "Released", "Canceled"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tmdb") / "synthetic-tiny-seed42"
    stats = generate_movielens(parse_synthetic_name("synthetic-tiny"), out, seed=42)
    with open(out / "links.csv", encoding="utf-8", newline="") as fh:
        links = list(csv.reader(fh))[1:]
    with open(out / "movies.csv", encoding="utf-8", newline="") as fh:
        movies = {int(r[0]): (r[1], r[2]) for r in list(csv.reader(fh))[1:]}
    return {"dir": out, "stats": stats, "payloads": list(iter_tmdb_payloads(out / TMDB_FILE)), "links": links,
            "movies": movies}


def _check(obj: dict, schema: dict[str, tuple[type, ...]], where: str) -> None:
    assert set(schema) <= set(obj), f"{where}: missing {set(schema) - set(obj)}"
    for key, types in schema.items():
        value = obj[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        assert ok, f"{where}.{key}: {type(value).__name__} not in {types}"


def test_file_is_gzip_jsonl_and_readable_from_dir(data: dict) -> None:
    path = data["dir"] / TMDB_FILE
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == len(data["payloads"]) == data["stats"]["n_tmdb_payloads"]
    assert [p["id"] for p in iter_tmdb_payloads(data["dir"])] == [p["id"] for p in data["payloads"]]


def test_one_payload_per_linked_movie_and_ids_match_links(data: dict) -> None:
    linked = {int(t): (int(m), imdb) for m, imdb, t in data["links"] if t}
    ids = [p["id"] for p in data["payloads"]]
    assert len(ids) == len(set(ids)) and set(ids) == set(linked)
    assert len(linked) < len(data["links"]), "movies without a tmdbId get no payload"
    for p in data["payloads"]:
        movie_id, imdb = linked[p["id"]]
        assert p["imdb_id"] == f"tt{imdb}" and re.fullmatch(r"tt\d{7}", p["imdb_id"])


def test_every_documented_field_with_its_type(data: dict) -> None:
    for p in data["payloads"]:
        where = f"movie {p['id']}"
        _check(p, TOP_LEVEL, where)
        if p["belongs_to_collection"] is not None:
            _check(p["belongs_to_collection"], COLLECTION, where + ".belongs_to_collection")
        for g in p["genres"]:
            _check(g, {"id": (int,), "name": (str,)}, where + ".genres")
            assert TMDB_GENRES[g["id"]] == g["name"]
        for c in p["production_companies"]:
            _check(c, COMPANY, where + ".production_companies")
        for c in p["production_countries"]:
            _check(c, {"iso_3166_1": (str,), "name": (str,)}, where + ".production_countries")
            assert re.fullmatch(r"[A-Z]{2}", c["iso_3166_1"])
        assert all(re.fullmatch(r"[A-Z]{2}", c) for c in p["origin_country"]) and p["origin_country"]
        for s in p["spoken_languages"]:
            _check(s, {"english_name": (str,), "iso_639_1": (str,), "name": (str,)}, where + ".spoken_languages")
        assert re.fullmatch(r"[a-z]{2}", p["original_language"])
        assert p["status"] in STATUSES
        assert p["release_date"] == "" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", p["release_date"])
        assert p["budget"] >= 0 and p["revenue"] >= 0 and 0 <= p["vote_average"] <= 10 and p["vote_count"] >= 0
        for path in (p["backdrop_path"], p["poster_path"]):
            assert path is None or re.fullmatch(r"/\w+\.jpg", path)
        # appended blocks: no id of their own
        assert set(p["credits"]) == {"cast", "crew"}
        assert set(p["keywords"]) == {"keywords"}
        assert set(p["release_dates"]) == {"results"}
        for c in p["credits"]["cast"]:
            _check(c, CAST, where + ".cast")
        for c in p["credits"]["crew"]:
            _check(c, CREW, where + ".crew")
        for k in p["keywords"]["keywords"]:
            _check(k, {"id": (int,), "name": (str,)}, where + ".keywords")
        for r in p["release_dates"]["results"]:
            _check(r, {"iso_3166_1": (str,), "release_dates": (list,)}, where + ".release_dates")
            for d in r["release_dates"]:
                _check(d, RELEASE, where + ".release_dates.release_dates")
                assert 1 <= d["type"] <= 6
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00\.000Z", d["release_date"])


def test_release_year_and_genres_match_movielens(data: dict) -> None:
    links = {int(t): int(m) for m, _, t in data["links"] if t}
    for p in data["payloads"]:
        title, genres = data["movies"][links[p["id"]]]
        year = re.search(r"\((\d{4})\)$", title)
        if year:
            assert p["release_date"][:4] == year.group(1)
        else:
            assert p["release_date"] == ""
        expected = {tg for g in genres.split("|") for tg in ML_TO_TMDB_GENRES.get(g, ())}
        got = {g["id"] for g in p["genres"]}
        assert expected <= got <= expected | {36}, (genres, got)  # History may come with War


def test_credits(data: dict) -> None:
    credit_ids = []
    persons: dict[int, tuple] = {}
    multi_job = 0
    for p in data["payloads"]:
        cast, crew = p["credits"]["cast"], p["credits"]["crew"]
        assert [c["order"] for c in cast] == list(range(len(cast)))
        assert len({c["cast_id"] for c in cast}) == len(cast)
        directors = [c for c in crew if c["job"] == "Director"]
        assert directors and all(c["department"] == "Directing" for c in directors)
        jobs = Counter(c["id"] for c in crew)
        multi_job += any(n > 1 for n in jobs.values())
        assert len({(c["id"], c["job"]) for c in crew}) == len(crew)
        for c in cast + crew:
            credit_ids.append(c["credit_id"])
            identity = (c["name"], c["original_name"], c["gender"], c["known_for_department"])
            assert persons.setdefault(c["id"], identity) == identity, "a person id always has the same name"
            assert c["gender"] in (0, 1, 2, 3)
    assert all(re.fullmatch(r"[0-9a-f]{24}", c) for c in credit_ids)
    assert len(set(credit_ids)) == len(credit_ids), "credit_id unique"
    assert multi_job > 0.1 * len(data["payloads"]), "one person may hold several crew jobs"
    appearances = Counter(pid for p in data["payloads"] for pid in {c["id"] for c in p["credits"]["cast"]})
    assert max(appearances.values()) >= 3, "persons are shared across movies"


def test_collections(data: dict) -> None:
    names: dict[int, str] = {}
    members = Counter()
    for p in data["payloads"]:
        c = p["belongs_to_collection"]
        if c is not None:
            assert names.setdefault(c["id"], c["name"]) == c["name"]
            members[c["id"]] += 1
    assert members and max(members.values()) >= 2


def test_keywords_shared_with_stable_ids(data: dict) -> None:
    by_name: dict[str, int] = {}
    for p in data["payloads"]:
        for k in p["keywords"]["keywords"]:
            assert by_name.setdefault(k["name"], k["id"]) == k["id"]
    known = dict(zip(VOCABULARY.names, VOCABULARY.ids.tolist(), strict=True))
    assert all(known[n] == i for n, i in by_name.items())
    assert any("," in n for n in by_name)


def _ml_genres(data: dict) -> dict[int, list[str]]:
    links = {int(t): int(m) for m, _, t in data["links"] if t}
    return {p["id"]: data["movies"][links[p["id"]]][1].split("|") for p in data["payloads"]}


def test_keywords_overviews_and_directors_carry_the_genre_signal(data: dict) -> None:
    genres = _ml_genres(data)
    ids = [p["id"] for p in data["payloads"] if genres[p["id"]] != ["(no genres listed)"]]
    by_id = {p["id"]: p for p in data["payloads"]}
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(ids))
    shuffled = {i: genres[ids[j]] for i, j in zip(ids, perm.tolist(), strict=True)}

    def keyword_share(assign: dict[int, list[str]]) -> float:
        hits = total = 0
        for i in ids:
            vocab = {k for g in assign[i] if g in LEXICON for k in LEXICON[g].keywords}
            for k in by_id[i]["keywords"]["keywords"]:
                total += 1
                hits += k["name"] in vocab
        return hits / total

    def overview_share(assign: dict[int, list[str]]) -> float:
        hits = total = 0
        for i in ids:
            text = by_id[i]["overview"]
            if not text:
                continue
            phrases = [x for g in assign[i] if g in LEXICON
                       for x in (*LEXICON[g].roles, *LEXICON[g].places, *LEXICON[g].threats, *LEXICON[g].goals)]
            total += 1
            hits += any(x in text for x in phrases)
        return hits / total

    assert keyword_share(genres) > 0.6 > 0.3 > keyword_share(shuffled)
    assert overview_share(genres) > 0.9 > 0.6 > overview_share(shuffled)
    # directors specialise: movies of the same director share a genre far more often than random pairs
    by_director = defaultdict(list)
    for i in ids:
        for c in by_id[i]["credits"]["crew"]:
            if c["job"] == "Director":
                by_director[c["id"]].append(set(genres[i]))
    same = [bool(a & b) for movies in by_director.values() for k, a in enumerate(movies) for b in movies[k + 1:]]
    pool = [set(genres[i]) for i in ids]
    rand = [bool(pool[a] & pool[b]) for a, b in rng.integers(0, len(pool), (2000, 2))]
    assert len(same) > 30 and np.mean(same) > 0.8 > np.mean(rand) + 0.2


def test_text_is_not_empty_for_most_movies(data: dict) -> None:
    ps = data["payloads"]
    assert np.mean([bool(p["overview"]) for p in ps]) > 0.95
    assert 0.3 < np.mean([bool(p["tagline"]) for p in ps]) < 0.8
    assert all(p["title"] and p["original_title"] for p in ps)
    assert any(p["original_language"] != "en" and p["original_title"] != p["title"] for p in ps)
    assert all(p["credits"]["cast"] for p in ps)
    assert np.mean([p["backdrop_path"] is None for p in ps]) > 0.02


def test_other_payload_paths(tmp_path: Path) -> None:
    """Without payloads requested nothing is written; a directory argument to the reader works."""
    out = tmp_path / "d"
    generate_movielens(parse_synthetic_name("synthetic-tiny"), out, seed=1, tmdb_payloads=False)
    assert not (out / TMDB_FILE).exists()
    with pytest.raises(FileNotFoundError):
        next(iter_tmdb_payloads(out))
