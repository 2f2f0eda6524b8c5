"""Who owns the assets and how they are tagged, in one place (the UI filters on both: `owner:`, `tag:`).

Tags say what a group name does not: the pipeline `stage` an asset serves (the `recall` group also holds the
splits every stage evaluates on, and the metrics) and the kind of `artifact` it writes. Select, e.g.,
`tag:artifact=model` or `tag:stage=evaluation` in the UI or with `dagster asset list --select`.
"""

from typing import Literal

OWNERS = ["team:recsys"]
"""Every asset's owner (Dagster accepts an e-mail address or `team:<name>`)."""

Stage = Literal["data", "features", "recall", "ranking", "evaluation"]
Artifact = Literal["raw", "table", "embeddings", "split", "candidates", "sequences", "profile", "samples", "model",
                   "recommendations", "metrics", "report"]


def asset_tags(stage: Stage, artifact: Artifact) -> dict[str, str]:
    """The asset tags {"stage": …, "artifact": …} (valid Dagster tag values: short, [A-Za-z0-9_.-])."""
    return {"stage": stage, "artifact": artifact}
