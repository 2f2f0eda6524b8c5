"""`Recommender` on a fully materialized synthetic-tiny lake: the ranked lists minus rated movies, every fallback,
similar movies by id and title, input validation, and artifacts that are missing, stale or from another dataset."""

from __future__ import annotations

import os
import shutil
import time

import duckdb
import numpy as np
import pytest

from movielens_assets.core.serving.artifacts import ArtifactMissing, ServingPaths
from movielens_assets.core.serving.recommender import (
    MAX_K,
    AmbiguousTitle,
    BadRequest,
    Recommender,
    UnknownMovie,
    check_id,
    check_k,
)


@pytest.fixture(scope="module")
def rec(served_lake) -> Recommender:
    return Recommender.load(served_lake.data_dir, dataset="synthetic-tiny")


def _rated(lake, user: int) -> set[int]:
    return {m for (m,) in duckdb.execute(f"SELECT movie_id FROM '{lake.data_dir}/processed/ratings.parquet' "
                                     f"WHERE user_id = {user}").fetchall()}


def _ranked(lake, user: int) -> list[int]:
    return [m for (m,) in duckdb.execute(
        f"SELECT movie_id FROM '{lake.data_dir}/ranking/recommendations/last_n/ranked.parquet' "
        f"WHERE user_id = {user} ORDER BY rank").fetchall()]


def test_paths_are_the_ones_the_assets_write(served_lake):
    from movielens_assets.assets import ranking, recall
    from movielens_assets.resources import DataLake

    lake, paths = DataLake(root=str(served_lake.data_dir)), ServingPaths(served_lake.data_dir)
    assert paths.ranked == ranking.recommendations_dir(lake, "last_n") / "ranked.parquet"
    assert paths.sequences == ranking.sequences_dir(lake, "last_n")
    assert paths.ranker_meta.parent == ranking.ranker_dir(lake, "last_n")
    assert paths.ids == recall.splits_dir(lake) / "last_n" / "ids"
    for channel in ("popularity", "itemcf", "semantic"):
        assert paths.channel(channel) == recall.model_dir(lake, "last_n", channel)
    assert paths.movies == lake.processed("movies")


def test_a_known_user_gets_the_ranked_list_without_rated_movies(rec, served_lake):
    users = duckdb.execute(f"SELECT DISTINCT user_id FROM "
                       f"'{served_lake.data_dir}/ranking/recommendations/last_n/ranked.parquet' ORDER BY 1 LIMIT 5"
                       ).fetchall()
    for (user,) in users:
        answer = rec.recommend(user, k=5)
        rated, ranked = _rated(served_lake, user), _ranked(served_lake, user)
        expected = [m for m in ranked if m not in rated][:5]
        got = [i["movie_id"] for i in answer["items"]]
        assert answer["source"] == "ranked" and answer["known"] and got == expected, (user, got, expected)
        assert [i["rank"] for i in answer["items"]] == [1, 2, 3, 4, 5]
        for item in answer["items"]:
            assert item["title"] and item["channels"] and 0.0 <= item["score"] <= 1.0
            assert item["scored_by"] == "unified_ranker"
    # the held-out (last 3) ratings are in some users' precomputed lists: they must have been removed
    root = served_lake.data_dir
    test_hits = duckdb.execute(f"""SELECT count(*) FROM '{root}/ranking/recommendations/last_n/ranked.parquet' r
        JOIN '{root}/recall/splits/last_n/test.parquet' t USING (user_id, movie_id)""").fetchone()[0]
    assert test_hits > 0, "the fixture should exercise the rated-movie filter"


def test_k_beyond_the_list_is_topped_up_with_fallbacks_never_repeating(rec, served_lake):
    (user,) = duckdb.execute(f"SELECT user_id FROM '{served_lake.data_dir}/ranking/recommendations/last_n/"
                             "ranked.parquet' LIMIT 1").fetchone()
    answer = rec.recommend(user, k=MAX_K)
    ids = [i["movie_id"] for i in answer["items"]]
    assert len(ids) == len(set(ids)) and not set(ids) & _rated(served_lake, user)
    assert len(ids) == min(MAX_K, rec.movie_ids.size - len(_rated(served_lake, user)))
    scorers = [i["scored_by"] for i in answer["items"]]
    assert scorers[0] == "unified_ranker" and set(scorers) > {"unified_ranker"}
    assert scorers == sorted(scorers, key=["unified_ranker", "rrf", "popularity"].index)  # ranked, then fallbacks


def test_unknown_users_get_popularity_or_neighbours_of_liked_movies(rec):
    unknown = int(rec.store.user_ids.max()) + 1000
    pop = rec.recommend(unknown, k=10)
    assert pop["source"] == "popularity" and not pop["known"]
    scores = [i["score"] for i in pop["items"]]
    assert scores == sorted(scores, reverse=True) and all(i["channels"] == ["popularity"] for i in pop["items"])
    liked = [int(m) for m in rec.ids.item_ids[:3]]
    answer = rec.recommend(None, k=10, liked=liked)
    assert answer["source"] == "liked" and answer["user"] is None
    got = [i["movie_id"] for i in answer["items"]]
    assert len(got) == 10 and not set(got) & set(liked)
    assert answer["items"][0]["scored_by"] == "rrf" and set(answer["items"][0]["channels"]) <= {"itemcf", "semantic"}


def test_a_user_with_ratings_but_no_list_gets_neighbours_of_their_history(rec, served_lake, tmp_path):
    """A user who rated movies but has no precomputed list (too few ratings to be evaluated; synthetic-tiny has
    none, so one user's list is dropped from a copy of the lake)."""
    lake = tmp_path / "lake"
    shutil.copytree(served_lake.data_dir, lake, ignore=shutil.ignore_patterns("raw", "samples"))
    user = int(rec._ranked.keys[0])
    ranked = lake / "ranking" / "recommendations" / "last_n" / "ranked.parquet"
    duckdb.execute(f"COPY (SELECT * FROM '{ranked}' WHERE user_id <> {user}) TO '{tmp_path}/r.parquet'")
    shutil.move(tmp_path / "r.parquet", ranked)
    answer = Recommender.load(lake).recommend(user, k=10)
    assert answer["source"] == "history" and answer["known"] and len(answer["items"]) == 10
    assert not {i["movie_id"] for i in answer["items"]} & _rated(served_lake, user)
    assert {c for i in answer["items"] for c in i["channels"]} <= {"itemcf", "semantic"}


def test_history_is_newest_first_and_includes_the_held_out_ratings(rec, served_lake):
    (user,) = duckdb.execute(f"SELECT user_id FROM '{served_lake.data_dir}/recall/splits/last_n/test.parquet' LIMIT 1"
                         ).fetchone()
    expected = duckdb.execute(f"SELECT movie_id, rating, epoch(timestamp)::BIGINT "
                              f"FROM '{served_lake.data_dir}/processed/ratings.parquet' "
                              f"WHERE user_id = {user} ORDER BY timestamp DESC, movie_id DESC LIMIT 5").fetchall()
    answer = rec.history(user, n=5)
    assert [(i["movie_id"], i["rating"], i["timestamp"]) for i in answer["items"]] == expected  # seconds
    assert answer["ratings"] == len(_rated(served_lake, user))


def test_similar_by_id_and_by_title(rec):
    movie = int(rec.ids.item_ids[np.argmax(rec.popularity)])
    answer = rec.similar(movie, k=8)
    got = [i["movie_id"] for i in answer["items"]]
    assert answer["movie"]["movie_id"] == movie and len(got) == 8 and movie not in got and len(set(got)) == 8
    itemcf = set(rec.ids.item_raw(np.asarray(rec.neighbours["itemcf"][0][rec.ids.item_index(np.array([movie]))[0]]))
                 .tolist())
    assert {i["movie_id"] for i in answer["items"] if "itemcf" in i["channels"]} <= itemcf
    title = rec.movie(movie)["title"]
    assert rec.similar(title.upper(), k=8)["movie"]["movie_id"] == movie  # case-insensitive full title
    assert rec.find_movie(f"  {title.lower()} ") == movie


def test_ambiguous_and_unknown_titles(rec):
    from collections import Counter

    from movielens_assets.core.serving.recommender import _strip_year

    names = Counter(_strip_year(t).casefold() for t in rec.titles)
    word = next((n for n, c in names.items() if c > 1), None)
    if word is None:  # a substring shared by several titles
        word = "the"
    with pytest.raises(AmbiguousTitle) as info:
        rec.find_movie(word)
    assert len(info.value.candidates) > 1 and all(word in c["title"].casefold() for c in info.value.candidates)
    assert "give the movie id" in str(info.value)
    with pytest.raises(UnknownMovie, match="no movie title matches"):
        rec.similar("zzz no such film qqq")
    with pytest.raises(UnknownMovie, match="not in movies.parquet"):
        rec.similar(10**8)


def test_a_movie_without_training_ratings_gets_semantic_neighbours(rec):
    cold = [int(m) for m in rec.movie_ids if rec.ids.item_index(np.array([m]))[0] < 0]
    if not cold:
        pytest.fail("synthetic-tiny should have movies without ratings in the training split")
    answer = rec.similar(cold[0], k=5)
    assert len(answer["items"]) == 5 and all(i["channels"] == ["semantic"] for i in answer["items"])


@pytest.mark.parametrize("bad", [0, -1, "-3", "abc", "1.5", "", None, True, 2**40])
def test_bad_ids_are_refused(rec, bad):
    with pytest.raises(BadRequest, match="positive integer"):
        check_id(bad, "user")
    if bad is not None:
        with pytest.raises(BadRequest):
            rec.recommend(bad)


@pytest.mark.parametrize("bad", [0, -1, MAX_K + 1, "ten", "", "1e3", None, 2.5])
def test_bad_k_is_refused(rec, bad):
    with pytest.raises(BadRequest, match=r"k must be an integer in 1\.\.200"):
        check_k(bad)
    with pytest.raises(BadRequest):
        rec.similar(1, k=bad)


def test_missing_stale_and_foreign_artifacts_name_the_asset(served_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(served_lake.data_dir, lake, ignore=shutil.ignore_patterns("raw", "samples"))
    Recommender.load(lake, dataset="synthetic-tiny")  # the copy is complete
    with pytest.raises(ArtifactMissing, match="materialize `ranked_recommendations`") as info:
        Recommender.load(lake, dataset="synthetic-1m")
    assert "synthetic-tiny" in str(info.value)

    items = lake / "recall" / "splits" / "last_n" / "ids" / "items.npy"
    later = time.time() + 5
    os.utime(items, (later, later))  # the split was rebuilt after everything downstream
    with pytest.raises(ArtifactMissing, match="older than the split .* earlier run: materialize `user_sequences`"):
        Recommender.load(lake)
    os.utime(items, (0, 0))

    (lake / "ranking" / "recommendations" / "last_n" / "ranked.parquet").unlink()
    with pytest.raises(ArtifactMissing, match=r"ranked.parquet does not exist: materialize `ranked_recommendations`"):
        Recommender.load(lake)
    with pytest.raises(ArtifactMissing, match="materialize `movies`"):
        Recommender.load(tmp_path / "empty")


def test_the_demo_ends_with_recommendations_for_a_heavy_and_a_light_user(rec, served_lake):
    from movielens_assets.demo import serving_examples

    text = "\n".join(serving_examples(served_lake.data_dir, "synthetic-tiny"))
    counts = rec.rating_counts(rec.users_with_lists)
    heavy, light = rec.users_with_lists[np.argmax(counts)], rec.users_with_lists[np.argmin(counts)]
    assert counts.max() > counts.min() > 0
    assert f"[heavy user]\nUser {heavy}: {counts.max()} ratings, the latest 3:" in text
    assert f"[light user]\nUser {light}: {counts.min()} ratings, the latest 3:" in text
    assert text.count("the UnifiedRanker's list (score = p(watch)") == 2
    title = rec.recommend(int(light), 5)["items"][0]["title"]
    assert title in text
    missing = serving_examples(served_lake.data_dir, "synthetic-1m")
    assert missing[0].startswith("recommendations: not available (") and "synthetic-tiny" in missing[0]
