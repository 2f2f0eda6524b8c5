"""DuckDB SQL from the staging tables to each star table, and the coverage query."""

from __future__ import annotations

from typing import Any

import duckdb

from movielens_assets.core.data.duck import one_row


def _nz(col: str) -> str:
    return f"NULLIF({col}, '')"


_LATEST = "ORDER BY fetched_at DESC, tmdb_id DESC"

_SQL: dict[str, str] = {
    "tmdb_movie": f"""
        SELECT tmdb_id, {_nz('imdb_id')} AS imdb_id, {_nz('title')} AS title,
               {_nz('original_title')} AS original_title, {_nz('original_language')} AS original_language,
               {_nz('overview')} AS overview, {_nz('tagline')} AS tagline,
               TRY_CAST({_nz('release_date')} AS DATE) AS release_date,
               NULLIF(runtime, 0) AS runtime, NULLIF(budget, 0) AS budget, NULLIF(revenue, 0) AS revenue,
               popularity, vote_average, vote_count, {_nz('status')} AS status, adult, video, softcore,
               {_nz('homepage')} AS homepage, {_nz('poster_path')} AS poster_path,
               {_nz('backdrop_path')} AS backdrop_path, collection_id,
               list_filter(origin_country, lambda x: x <> '') AS origin_country, fetched_at
        FROM stg_movie ORDER BY tmdb_id""",
    "tmdb_person": f"""
        SELECT person_id, {_nz('name')} AS name, {_nz('original_name')} AS original_name, gender,
               {_nz('known_for_department')} AS known_for_department, popularity,
               {_nz('profile_path')} AS profile_path, adult, fetched_at
        FROM stg_person
        QUALIFY row_number() OVER (PARTITION BY person_id {_LATEST}, credit_id DESC) = 1
        ORDER BY person_id""",
    "tmdb_genre": f"""
        SELECT genre_id, {_nz('name')} AS name FROM stg_genre
        QUALIFY row_number() OVER (PARTITION BY genre_id {_LATEST}, position) = 1 ORDER BY genre_id""",
    "tmdb_keyword": f"""
        SELECT keyword_id, {_nz('name')} AS name FROM stg_keyword
        QUALIFY row_number() OVER (PARTITION BY keyword_id {_LATEST}, position) = 1 ORDER BY keyword_id""",
    "tmdb_company": f"""
        SELECT company_id, {_nz('name')} AS name, {_nz('origin_country')} AS origin_country,
               {_nz('logo_path')} AS logo_path FROM stg_company
        QUALIFY row_number() OVER (PARTITION BY company_id {_LATEST}, position) = 1 ORDER BY company_id""",
    "tmdb_country": f"""
        WITH named AS (
            SELECT iso_3166_1, {_nz('name')} AS name FROM stg_country
            QUALIFY row_number() OVER (PARTITION BY iso_3166_1 {_LATEST}, position) = 1),
        codes AS (
            SELECT iso_3166_1 FROM stg_country
            UNION SELECT unnest(origin_country) FROM stg_movie
            UNION SELECT origin_country FROM stg_company
            UNION SELECT iso_3166_1 FROM stg_release)
        SELECT c.iso_3166_1, n.name FROM codes c LEFT JOIN named n USING (iso_3166_1)
        WHERE c.iso_3166_1 IS NOT NULL AND c.iso_3166_1 <> '' ORDER BY c.iso_3166_1""",
    "tmdb_language": f"""
        WITH named AS (
            SELECT iso_639_1, {_nz('english_name')} AS english_name, {_nz('name')} AS name
            FROM stg_language
            QUALIFY row_number() OVER (PARTITION BY iso_639_1 {_LATEST}, position) = 1),
        codes AS (
            SELECT iso_639_1 FROM stg_language
            UNION SELECT original_language FROM stg_movie
            UNION SELECT iso_639_1 FROM stg_release)
        SELECT c.iso_639_1, n.english_name, n.name FROM codes c LEFT JOIN named n USING (iso_639_1)
        WHERE c.iso_639_1 IS NOT NULL AND c.iso_639_1 <> '' ORDER BY c.iso_639_1""",
    "tmdb_collection": f"""
        SELECT collection_id, {_nz('name')} AS name, {_nz('poster_path')} AS poster_path,
               {_nz('backdrop_path')} AS backdrop_path FROM stg_collection
        QUALIFY row_number() OVER (PARTITION BY collection_id {_LATEST}) = 1 ORDER BY collection_id""",
    "tmdb_cast": f"""
        SELECT credit_id, tmdb_id, person_id, {_nz('"character"')} AS "character", cast_order, cast_id
        FROM stg_cast
        QUALIFY row_number() OVER (PARTITION BY credit_id ORDER BY tmdb_id, cast_order, person_id) = 1
        ORDER BY tmdb_id, cast_order, credit_id""",
    "tmdb_crew": f"""
        SELECT credit_id, tmdb_id, person_id, {_nz('department')} AS department, {_nz('job')} AS job
        FROM stg_crew
        QUALIFY row_number() OVER (PARTITION BY credit_id ORDER BY tmdb_id, person_id, job) = 1
        ORDER BY tmdb_id, credit_id""",
    "tmdb_movie_genre": """
        SELECT tmdb_id, genre_id, min(position)::INTEGER AS position FROM stg_genre
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_keyword": """
        SELECT tmdb_id, keyword_id, min(position)::INTEGER AS position FROM stg_keyword
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_company": """
        SELECT tmdb_id, company_id, min(position)::INTEGER AS position FROM stg_company
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_movie_country": """
        WITH origin AS (
            SELECT tmdb_id, unnest(origin_country) AS iso_3166_1,
                   (generate_subscripts(origin_country, 1) - 1) AS position FROM stg_movie),
        rows AS (
            SELECT tmdb_id, iso_3166_1, 'production' AS role, position FROM stg_country
            UNION ALL SELECT tmdb_id, iso_3166_1, 'origin' AS role, position FROM origin)
        SELECT tmdb_id, iso_3166_1, role, min(position)::INTEGER AS position FROM rows
        WHERE iso_3166_1 IS NOT NULL AND iso_3166_1 <> ''
        GROUP BY ALL ORDER BY tmdb_id, role DESC, position""",
    "tmdb_movie_language": """
        SELECT tmdb_id, iso_639_1, min(position)::INTEGER AS position FROM stg_language
        GROUP BY ALL ORDER BY tmdb_id, position""",
    "tmdb_release_date": f"""
        SELECT tmdb_id, position, {_nz('iso_3166_1')} AS iso_3166_1,
               TRY_CAST({_nz('release_date')} AS TIMESTAMPTZ)::TIMESTAMP AS release_date, type,
               {_nz('certification')} AS certification, {_nz('note')} AS note,
               {_nz('iso_639_1')} AS iso_639_1, descriptors
        FROM stg_release ORDER BY tmdb_id, position""",
}

_MOVIE_TMDB_SQL = """
    WITH l AS (SELECT movie_id, imdb_id, tmdb_id AS links_tmdb FROM stg_links),
    m AS (
        SELECT l.movie_id, l.imdb_id, coalesce(l.links_tmdb, r.tmdb_id) AS tmdb_id,
               CASE WHEN l.links_tmdb IS NOT NULL THEN 'links'
                    WHEN r.tmdb_id IS NOT NULL THEN 'find' END AS source
        FROM l LEFT JOIN stg_resolved r USING (movie_id))
    SELECT m.movie_id, m.imdb_id, m.tmdb_id, m.source, o.outcome AS landing_outcome,
           (t.tmdb_id IS NOT NULL) AS has_payload,
           (m.tmdb_id IS NOT NULL AND count(*) OVER (PARTITION BY m.tmdb_id) > 1) AS tmdb_id_shared
    FROM m
    LEFT JOIN stg_outcome o ON o.tmdb_id = m.tmdb_id
    LEFT JOIN tmdb_movie t ON t.tmdb_id = m.tmdb_id
    ORDER BY m.movie_id"""


_COVERAGE_SQL = """
    SELECT count(*) AS movies,
           count(mt.tmdb_id) AS with_tmdb_id,
           count(*) - count(mt.tmdb_id) AS without_tmdb_id,
           count(*) FILTER (WHERE source = 'links') AS tmdb_id_from_links,
           count(*) FILTER (WHERE source = 'find') AS tmdb_id_from_find,
           count(*) FILTER (WHERE has_payload) AS with_payload,
           count(*) FILTER (WHERE t.overview IS NOT NULL) AS with_overview,
           count(*) FILTER (WHERE landing_outcome = 'not_found') AS not_found,
           count(*) FILTER (WHERE landing_outcome = 'failed') AS failed,
           count(*) FILTER (WHERE mt.tmdb_id IS NOT NULL AND landing_outcome IS NULL) AS not_fetched,
           count(*) FILTER (WHERE tmdb_id_shared) AS movies_with_shared_tmdb_id,
           count(DISTINCT mt.tmdb_id) FILTER (WHERE tmdb_id_shared) AS shared_tmdb_ids
    FROM movie_tmdb mt LEFT JOIN tmdb_movie t USING (tmdb_id)"""


def _coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    cur = con.execute(_COVERAGE_SQL)
    names = [d[0] for d in cur.description]
    stats = dict(zip(names, one_row(cur), strict=True))
    movies = stats["movies"]
    stats["with_payload_share"] = stats["with_payload"] / movies if movies else 0.0
    stats["with_overview_share"] = stats["with_overview"] / movies if movies else 0.0
    return stats
