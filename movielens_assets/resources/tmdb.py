"""TMDb API access for the enrichment assets: credentials, host, politeness settings.

Secrets (`read_access_token`, `api_key`) are plain resource fields so that `definitions.py` can
pass them as `dg.EnvVar("TMDB_API_READ_ACCESS_TOKEN")` / `dg.EnvVar("TMDB_API_KEY")` (resolved at
launch, shown only by name in the UI and in run storage). They never go to logs or metadata:
`describe()` is what the assets report, and every message of the client is scrubbed.
"""


from pathlib import Path

import dagster as dg

from movielens_assets.core.tmdb.client import TMDbConfig
from movielens_assets.settings import default

CREDENTIALS_HINT = (
    "set TMDB_API_READ_ACCESS_TOKEN (preferred; the 'API Read Access Token' of "
    "https://www.themoviedb.org/settings/api) or TMDB_API_KEY in the environment or in .env, e.g. "
    "`TMDB_API_READ_ACCESS_TOKEN=... MOVIELENS_DATASET=ml-latest-small make demo`"
)


class TMDbResource(dg.ConfigurableResource):
    """How to reach TMDb (`TMDB_*` settings). `has_credentials` False -> the crawl is skipped."""

    read_access_token: str | None = default("tmdb_read_access_token")
    api_key: str | None = default("tmdb_api_key")
    base_url: str = default("tmdb_base_url")
    language: str = default("tmdb_language")
    max_connections: int = default("tmdb_max_connections")
    rate_limit_per_s: float = default("tmdb_rate_limit_per_s")
    timeout_s: float = default("tmdb_timeout_s")
    required: bool = default("tmdb_required")
    """TMDB_REQUIRED=1: no credentials (or no links) is a failure, not an empty enrichment."""
    max_age_days: float | None = default("tmdb_max_age_days")
    """A crawl also re-fetches payloads fetched more than this many days ago (None: never)."""
    progress_every_s: float = 15.0
    """Seconds between progress lines of a crawl in the Dagster log."""

    def _token(self) -> str | None:
        return (self.read_access_token or "").strip() or None

    def _key(self) -> str | None:
        return (self.api_key or "").strip() or None

    @property
    def has_credentials(self) -> bool:
        return bool(self._token() or self._key())

    @property
    def auth_style(self) -> str:
        """`bearer`, `api_key` or `none` — safe to log."""
        return "bearer" if self._token() else ("api_key" if self._key() else "none")

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age_days is None else self.max_age_days * 86400.0

    def config(self) -> TMDbConfig:
        """The client configuration (raises ValueError without credentials)."""
        if not self.has_credentials:
            raise ValueError(f"no TMDb credentials: {CREDENTIALS_HINT}")
        return TMDbConfig(
            base_url=self.base_url.rstrip("/"),
            read_access_token=self._token(),
            api_key=None if self._token() else self._key(),
            language=self.language,
            max_connections=self.max_connections,
            rate_limit_per_s=self.rate_limit_per_s,
            timeout_s=self.timeout_s,
        )

    def describe(self) -> dict[str, object]:
        """Non-secret settings, for logs and metadata."""
        return {
            "base_url": self.base_url,
            "auth": self.auth_style,
            "language": self.language,
            "max_connections": self.max_connections,
            "rate_limit_per_s": self.rate_limit_per_s,
        }

    @staticmethod
    def landing_dir(raw_dir: Path) -> Path:
        """`<data>/raw/tmdb/`: the landing zone and its small state files."""
        return Path(raw_dir) / "tmdb"

    @staticmethod
    def star_dir(processed_dir: Path) -> Path:
        """`<data>/processed/tmdb/`: the star tables."""
        return Path(processed_dir) / "tmdb"
