"""Invariants of a per-user list file (recall candidates, merged candidates, re-ranked recommendations), in
DuckDB: the asset checks of the recall and ranking groups call `check_list_file` on every file an asset wrote.

A list file holds one row per (user, item) with a 1-based `rank` per user. What must hold:
- the file exists and has rows; the expected columns with the expected DuckDB types;
- no NULL key (user_id, movie_id, rank) and no duplicate (user, movie);
- no (user, movie) that is in the user's TRAINING rows of the stage the list was made for (the seen-item rule
  every channel and the ranker follow; a seen item in the candidates becomes a false negative or an easy
  positive in the ranking samples);
- every user is a target user of that stage;
- the scores are finite (probabilities also within [0, 1]), optional per-channel scores finite where set and
  set exactly where their rank is;
- each user's ranks are exactly 1..n; where the list is ordered by a score, that score never increases
  along the ranks.

Every condition is a set-wise SQL query (semi / anti joins, aggregates, one window): at 32M ratings a channel's
list is ~40M rows and the train split ~31M, which DuckDB joins within the lake's memory bound, spilling when
needed. Examples of violations are fetched only when there are violations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from movielens_assets.core.data.duck import one_row, parquet_row_count, parquet_schema, sql_str

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

KEYS = ("user_id", "movie_id", "rank")
NUMERIC = ("FLOAT", "DOUBLE")
EXAMPLES = 5


@dataclass(frozen=True)
class ListSpec:
    """What a list file must look like.

    `columns`: column -> DuckDB type (as DESCRIBE names it: INTEGER, FLOAT, VARCHAR[], …); `scores`: columns
    that must be finite on every row; `score_prefix`: every column starting with it is a score too (FLOAT);
    `probability`: the scores lie in [0, 1]; `paired`: (rank column, score column) pairs set on the same rows,
    the score finite where set; `ordered_by`: a score that never increases along each user's ranks."""

    columns: Mapping[str, str]
    scores: tuple[str, ...] = ("score",)
    score_prefix: str | None = None
    probability: bool = False
    paired: tuple[tuple[str, str], ...] = ()
    ordered_by: str | None = None


CANDIDATES = ListSpec(columns={"user_id": "INTEGER", "movie_id": "INTEGER", "rank": "INTEGER", "score": "FLOAT"},
                      ordered_by="score")
"""A channel's candidates (`core.recall.runner.candidates_table`), best first (`BaseRecall.recommend`)."""


def merged_spec(channels: tuple[str, ...] | list[str]) -> ListSpec:
    """A merged list (`core.recall.merge.merge_candidates`) of `channels`: ordered by its score, with each
    channel's rank and score where the channel proposed the item."""
    columns = {**CANDIDATES.columns, "channels": "VARCHAR[]", "channel_ranks": "INTEGER[]"}
    for c in channels:
        columns.update({f"rank_{c}": "INTEGER", f"score_{c}": "FLOAT"})
    return ListSpec(columns=columns, paired=tuple((f"rank_{c}", f"score_{c}") for c in channels),
                    ordered_by="score")


RECOMMENDATIONS = ListSpec(
    columns={"user_id": "INTEGER", "movie_id": "INTEGER", "rank": "INTEGER", "merged_rank": "INTEGER",
             "channels": "VARCHAR[]", "p_watch": "FLOAT"},
    scores=("p_watch",), score_prefix="p_", probability=True, ordered_by="p_watch")
"""A re-ranked list (`core.ranking.rerank.rerank`): one probability `p_<task>` per task, ranked by `p_watch`."""


@dataclass
class ListReport:
    """The conditions checked on one file: `checked` {condition: violations} (0: holds), `problems` one phrase
    per violated condition, `examples` a few offending rows or users per condition."""

    label: str
    path: str
    rows: int = 0
    users: int = 0
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    examples: dict[str, list] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """`<label>: <problem>; <problem>` (or `<label>: ok`)."""
        return f"{self.label}: {'; '.join(self.problems) if self.problems else 'ok'}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "passed": self.passed, "rows": self.rows, "users": self.users,
                "checked": self.checked, "problems": self.problems, "examples": self.examples}

    def _record(self, condition: str, violations: int, problem: str) -> None:
        self.checked[condition] = int(violations)
        if violations:
            self.problems.append(problem)


def _plain(v: Any) -> Any:
    """A JSON-safe value (NaN / inf as strings)."""
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v


def _examples(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cur = con.execute(f"{query} LIMIT {EXAMPLES}")
    names = [d[0] for d in cur.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def check_list_file(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], spec: ListSpec, *,
                    train: str | os.PathLike[str], users: str | os.PathLike[str] | None = None,
                    label: str | None = None) -> ListReport:
    """Check the list file at `path` against `spec`; `train`: the training rows (user_id, movie_id) of the stage
    the list was made for (the seen-item rule); `users`: a file whose user_ids are the stage's target users."""
    path = Path(path)
    report = ListReport(label or path.name, str(path))
    if not path.is_file():
        report._record("file_exists", 1, f"file missing ({path})")
        return report
    report.checked["file_exists"] = 0
    src = f"read_parquet({sql_str(path)})"
    schema = dict(parquet_schema(con, path))
    prefixed = tuple(c for c in schema if spec.score_prefix and c.startswith(spec.score_prefix))
    scores = tuple(dict.fromkeys((*spec.scores, *prefixed)))
    expected = {**spec.columns, **{c: "FLOAT" for c in scores if c not in spec.columns}}
    missing = [c for c in expected if c not in schema]
    report._record("missing_columns", len(missing), f"missing column(s) {', '.join(missing)}")
    wrong = {c: schema[c] for c in expected if c in schema and schema[c] != expected[c]}
    report._record("wrong_types", len(wrong), ", ".join(f"column {c} is {t} (expected {expected[c]})"
                                                        for c, t in wrong.items()))
    report.rows = parquet_row_count(con, path)
    report._record("empty", int(report.rows == 0), "no rows")
    if report.rows == 0:
        return report
    numeric = {c for c in schema if schema[c] in NUMERIC}
    have_keys = all(k in schema for k in KEYS)

    aggregates: dict[str, tuple[str, str]] = {}  # condition -> (SQL count, problem template with {n})
    if have_keys:
        aggregates["null_keys"] = ("count_if(user_id IS NULL OR movie_id IS NULL OR rank IS NULL)",
                                   "{n} rows with a NULL user_id, movie_id or rank")
    for c in scores:
        if c in numeric:
            aggregates[f"non_finite:{c}"] = (f"count_if({c} IS NULL OR NOT isfinite({c}))",
                                            f"{{n}} non-finite or NULL {c} values")
            if spec.probability:
                aggregates[f"out_of_range:{c}"] = (f"count_if(isfinite({c}) AND ({c} < 0 OR {c} > 1))",
                                                   f"{{n}} {c} values outside [0, 1]")
    for r, s in spec.paired:
        if r in schema and s in numeric:
            aggregates[f"unpaired:{s}"] = (f"count_if(({r} IS NULL) <> ({s} IS NULL))",
                                          f"{{n}} rows with only one of {r} / {s} set")
            aggregates[f"non_finite:{s}"] = (f"count_if({s} IS NOT NULL AND NOT isfinite({s}))",
                                            f"{{n}} non-finite {s} values")
    user_count = "count(DISTINCT user_id)" if "user_id" in schema else "0"
    values = one_row(con.execute(f"SELECT {user_count}{''.join(f', {q}' for q, _ in aggregates.values())} FROM {src}"))
    report.users = int(values[0])
    for (condition, (_, problem)), n in zip(aggregates.items(), values[1:], strict=True):
        report._record(condition, int(n), problem.format(n=f"{int(n):,}"))

    if not have_keys:
        return report
    # a grouped aggregate (spills to disk) rather than count(DISTINCT (user, movie)) over the whole file
    (dup,) = one_row(con.execute(f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {src} "
                                 "GROUP BY user_id, movie_id HAVING count(*) > 1)"))
    report._record("duplicates", int(dup), f"{int(dup):,} duplicate (user, movie) rows")
    seen_rows = f"SELECT c.user_id, c.movie_id FROM {src} c SEMI JOIN read_parquet({sql_str(train)}) t " \
                "ON c.user_id = t.user_id AND c.movie_id = t.movie_id"
    (seen,) = one_row(con.execute(f"SELECT count(*) FROM ({seen_rows})"))
    report._record("seen", int(seen), f"{int(seen):,} candidates already in the user's train split")
    if seen:
        report.examples["seen"] = _examples(con, seen_rows)
    if users is not None:
        outside = f"SELECT DISTINCT c.user_id FROM {src} c ANTI JOIN read_parquet({sql_str(users)}) u " \
                  "ON c.user_id = u.user_id"
        (n_out,) = one_row(con.execute(f"SELECT count(*) FROM ({outside})"))
        report._record("unknown_users", int(n_out),
                       f"{int(n_out):,} users who are not target users of the stage ({Path(users).name})")
        if n_out:
            report.examples["unknown_users"] = _examples(con, outside)
    # one pass in (user, rank) order: a user's ranks are exactly 1..n iff, sorted, each equals its position;
    # the ordering score never increases from one rank to the next
    order = spec.ordered_by if spec.ordered_by in numeric else None
    walk = f"""SELECT user_id, rank, row_number() OVER w AS position
                      {f', {order}, lag({order}) OVER w AS previous' if order else ''}
               FROM {src} WINDOW w AS (PARTITION BY user_id ORDER BY rank)"""
    misordered = f"count_if({order} > previous)" if order else "0"
    n_bad, n_mis = one_row(con.execute(
        f"SELECT count(DISTINCT user_id) FILTER (WHERE rank <> position), {misordered} FROM ({walk})"))
    report._record("ranks_not_1_to_n", int(n_bad), f"{int(n_bad):,} users whose ranks are not 1..n")
    if n_bad:
        report.examples["ranks_not_1_to_n"] = _examples(
            con, f"SELECT user_id, rank, position FROM ({walk}) WHERE rank <> position")
    if order is not None:
        report._record(f"ordered_by:{order}", int(n_mis),
                       f"{int(n_mis):,} rows whose {order} is above that of the row ranked before them")
        if n_mis:
            report.examples[f"ordered_by:{order}"] = _examples(
                con, f"SELECT user_id, rank, {order}, previous FROM ({walk}) WHERE {order} > previous")
    return report


def summarise(reports: list[ListReport], limit: int = 3) -> str:
    """One line naming the failing files and what failed (the first `limit` files, then a count)."""
    failed = [r for r in reports if not r.passed]
    if not failed:
        return f"all {len(reports)} files pass"
    text = " | ".join(r.summary() for r in failed[:limit])
    return text + (f" | and {len(failed) - limit} more file(s)" if len(failed) > limit else "")
