"""One asset check result from the `core.evaluation.list_checks` reports of every file an asset wrote."""

from typing import Any

import dagster as dg

from movielens_assets.assets._metadata import markdown_table
from movielens_assets.core.evaluation.list_checks import ListReport, summarise


def list_check_result(reports: list[ListReport]) -> dg.AssetCheckResult:
    """Passed when every file passes. Metadata: the files checked and failed, a table of every file (rows,
    users, what failed), each file's conditions with their violation counts and examples (`results`); a failed
    result's `description` is the one-line summary (`<file label>: <what failed>`) that logs and the CLI show."""
    failed = [r for r in reports if not r.passed]
    rows = [(f"`{r.label}`", f"{r.rows:,}", f"{r.users:,}", "; ".join(r.problems) or "ok") for r in reports]
    metadata: dict[str, Any] = {
        "files": len(reports),
        "failed_files": len(failed),
        "summary": summarise(reports),
        "files_table": dg.MetadataValue.md(markdown_table(["file", "rows", "users", "problems"], rows)),
        "results": dg.MetadataValue.json({r.label: r.to_dict() for r in reports}),
    }
    return dg.AssetCheckResult(passed=not failed, metadata=metadata,
                               description=summarise(reports) if failed else None)
