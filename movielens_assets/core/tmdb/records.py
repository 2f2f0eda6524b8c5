"""The record that flows from the TMDb client into the landing zone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["ok", "not_found", "failed"]


@dataclass(frozen=True)
class FetchResult:
    """The outcome of fetching one TMDb movie.

    `status` is the final HTTP status (0 when no response arrived: timeout, reset, ...).
    `payload` is the parsed JSON body for status 200, else None. `error` is a short reason for
    anything but 200 — never containing credentials. `fetched_at` is unix seconds (UTC).
    """

    tmdb_id: int
    status: int
    fetched_at: float
    payload: dict[str, Any] | None = None
    error: str | None = None

    @property
    def outcome(self) -> Outcome:
        if self.status == 200 and self.payload is not None:
            return "ok"
        if self.status == 404:
            return "not_found"
        return "failed"
