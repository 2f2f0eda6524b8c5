"""Exploratory data analysis of the ingested tables: the numbers recommender engineers look for first,
four plots, and a markdown report. All aggregation in DuckDB; only small summaries reach Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from movielens_assets.core.data.atomic import atomic_path, atomic_write_text
from movielens_assets.core.data.duck import one_row, sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb


@dataclass(frozen=True)
class EdaResult:
    stats: dict[str, Any]
    markdown: str
    report_path: Path
    plots: dict[str, Path]


def compute_stats(
    con: duckdb.DuckDBPyConnection, ratings: Path, movies: Path, tags: Path, links: Path
) -> dict[str, Any]:
    r, m, t, lk = (f"read_parquet({sql_str(p)})" for p in (ratings, movies, tags, links))
    s: dict[str, Any] = {}
    (
        s["ratings"], s["users"], s["rated_movies"], s["rating_mean"], s["first_rating"], s["last_rating"],
    ) = one_row(con.execute(
        f"SELECT count(*), count(DISTINCT user_id), count(DISTINCT movie_id), avg(rating), "
        f"min(timestamp), max(timestamp) FROM {r}"
    ))
    s["movies"] = one_row(con.execute(f"SELECT count(*) FROM {m}"))[0]
    s["tags"] = one_row(con.execute(f"SELECT count(*) FROM {t}"))[0]
    s["links"], s["links_with_tmdb_id"] = one_row(con.execute(f"SELECT count(*), count(tmdb_id) FROM {lk}"))
    s["sparsity"] = 1.0 - s["ratings"] / max(1, s["users"] * s["rated_movies"])
    act = one_row(con.execute(
        f"SELECT median(n), avg(n), min(n), max(n), quantile_cont(n, 0.9) FROM "
        f"(SELECT count(*) AS n FROM {r} GROUP BY user_id)"
    ))
    s["user_activity"] = dict(zip(["median", "mean", "min", "max", "p90"], map(float, act), strict=True))
    pop = one_row(con.execute(
        f"WITH c AS (SELECT count(*) AS n FROM {r} GROUP BY movie_id), "
        f"ranked AS (SELECT n, row_number() OVER (ORDER BY n DESC) AS rk, count(*) OVER () AS k FROM c) "
        f"SELECT sum(n) FILTER (WHERE rk <= ceil(k * 0.1)) / sum(n), median(n), "
        f"count(*) FILTER (WHERE n < 5) / count(*) FROM ranked"
    ))
    s["top10pct_movie_share"], s["movie_popularity_median"], s["share_movies_under_5_ratings"] = map(float, pop)
    s["rating_histogram"] = dict(
        con.execute(f"SELECT rating, count(*) FROM {r} GROUP BY rating ORDER BY rating").fetchall()
    )
    s["ratings_per_year"] = dict(
        con.execute(f"SELECT year(timestamp) AS y, count(*) FROM {r} GROUP BY y ORDER BY y").fetchall()
    )
    s["genres"] = [
        {"genre": g, "movies": nm, "ratings": nr}
        for g, nm, nr in con.execute(
            f"WITH mg AS (SELECT movie_id, unnest(genres) AS genre FROM {m}), "
            f"rc AS (SELECT movie_id, count(*) AS n FROM {r} GROUP BY movie_id) "
            f"SELECT genre, count(*), coalesce(sum(rc.n), 0)::BIGINT FROM mg LEFT JOIN rc USING (movie_id) "
            f"GROUP BY genre ORDER BY 2 DESC, 1"
        ).fetchall()
    ]
    s["movies_without_genre"] = one_row(con.execute(f"SELECT count(*) FROM {m} WHERE len(genres) = 0"))[0]
    s["movies_without_year"] = one_row(con.execute(f"SELECT count(*) FROM {m} WHERE year IS NULL"))[0]
    return s


def _plots(con: duckdb.DuckDBPyConnection, ratings: Path, stats: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    r = f"read_parquet({sql_str(ratings)})"
    plots: dict[str, Path] = {}

    def save(fig: Any, name: str) -> None:
        path = out_dir / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        plots[name] = path

    hist = stats["rating_histogram"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([float(k) for k in hist], list(hist.values()), width=0.4, color="#4c72b0")
    ax.set(title="Rating distribution", xlabel="rating", ylabel="ratings")
    save(fig, "rating_histogram")

    counts = np.array(
        [n for (n,) in con.execute(f"SELECT count(*) AS n FROM {r} GROUP BY movie_id ORDER BY n DESC").fetchall()]
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if counts.size:
        ax.plot(np.arange(1, counts.size + 1) / counts.size * 100, np.cumsum(counts) / counts.sum() * 100)
        ax.axvline(10, color="grey", linestyle=":")
    ax.set(title="Long tail: cumulative share of ratings", xlabel="% of movies (by popularity)",
           ylabel="% of ratings")
    save(fig, "long_tail")

    per_user = np.array([n for (n,) in con.execute(f"SELECT count(*) FROM {r} GROUP BY user_id").fetchall()])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if per_user.size:
        bins = np.logspace(np.log10(max(1, per_user.min())), np.log10(per_user.max() + 1), 40)
        # matplotlib's stub types `bins` as int | Sequence[float] | str; it takes any array-like of edges
        ax.hist(per_user, bins=bins, color="#55a868")  # type: ignore[arg-type]
        ax.set_xscale("log")
    ax.set(title="User activity (ratings per user)", xlabel="ratings per user (log)", ylabel="users")
    save(fig, "user_activity")

    years = stats["ratings_per_year"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(years), list(years.values()), color="#c44e52")
    ax.set(title="Ratings per year", xlabel="year", ylabel="ratings")
    save(fig, "ratings_per_year")
    return plots


def render_markdown(stats: dict[str, Any], dataset: str, plots: dict[str, Path]) -> str:
    a = stats["user_activity"]
    lines = [
        f"# EDA report — `{dataset}`",
        "",
        "Regenerate: `dagster asset materialize -m movielens_assets.definitions --select eda_report` "
        "(with the same `MOVIELENS_DATASET`).",
        "",
        "## Counts",
        "",
        "| metric | value |",
        "|---|---|",
        f"| ratings | {stats['ratings']:,} |",
        f"| users | {stats['users']:,} |",
        f"| movies (catalogue) | {stats['movies']:,} |",
        f"| movies with ≥ 1 rating | {stats['rated_movies']:,} |",
        f"| tags | {stats['tags']:,} |",
        f"| links (with tmdb_id) | {stats['links']:,} ({stats['links_with_tmdb_id']:,}) |",
        f"| sparsity (1 − ratings / (users × rated movies)) | {stats['sparsity']:.4%} |",
        f"| mean rating | {stats['rating_mean']:.3f} |",
        f"| time span | {stats['first_rating']} → {stats['last_rating']} |",
        "",
        "## Popularity and activity",
        "",
        "| metric | value |",
        "|---|---|",
        f"| share of ratings on the top 10% of rated movies | {stats['top10pct_movie_share']:.1%} |",
        f"| median ratings per movie | {stats['movie_popularity_median']:.0f} |",
        f"| share of rated movies with < 5 ratings | {stats['share_movies_under_5_ratings']:.1%} |",
        f"| ratings per user: median / mean | {a['median']:.0f} / {a['mean']:.1f} |",
        f"| ratings per user: min / p90 / max | {a['min']:.0f} / {a['p90']:.0f} / {a['max']:.0f} |",
        "",
        "## Genres",
        "",
        "| genre | movies | ratings |",
        "|---|---|---|",
        *[f"| {g['genre']} | {g['movies']:,} | {g['ratings']:,} |" for g in stats["genres"]],
        "",
        f"Movies without a genre: {stats['movies_without_genre']:,}; without a year in the title: "
        f"{stats['movies_without_year']:,}.",
        "",
        "## Plots",
        "",
        *[f"![{name}]({path.name})" for name, path in plots.items()],
        "",
    ]
    return "\n".join(lines)


def build_eda_report(
    con: duckdb.DuckDBPyConnection,
    *,
    ratings: Path,
    movies: Path,
    tags: Path,
    links: Path,
    out_dir: Path,
    dataset: str,
) -> EdaResult:
    """Write `out_dir/EDA_REPORT.md` and its PNG plots (atomically); return the numbers too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = compute_stats(con, ratings, movies, tags, links)
    plots = _plots(con, ratings, stats, out_dir)
    markdown = render_markdown(stats, dataset, plots)
    report = atomic_write_text(out_dir / "EDA_REPORT.md", markdown)
    return EdaResult(stats, markdown, report, plots)
