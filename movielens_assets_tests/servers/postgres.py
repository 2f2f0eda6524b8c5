"""A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl start` on 127.0.0.1 and a
free port (its socket in that directory, never the system's), one database, `pg_ctl stop -m fast` and the directory
removed on exit — also when the test fails.

    with throwaway_postgres() as pg:          # pg.host, pg.port, pg.user, pg.db, pg.url
        ...

The server binaries come from the OS package (`postgresql`: Debian puts them in /usr/lib/postgresql/<N>/bin, not
on PATH). PostgreSQL refuses to run as root: as root, `initdb`, `pg_ctl` and the server run as an unprivileged user
(`postgres` when it exists, else `nobody`) through `runuser` (or `su`), and the directory is handed to that user.
Trust authentication on 127.0.0.1 only: the server is private to the test and gone when it ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")

NO_POSTGRES = ("no PostgreSQL server binary (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin: "
               "install the OS package `postgresql` (.ci/run does where it may)")


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres of one PostgreSQL installation (the newest major version
    when several are installed), or None."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)  # /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                    "/opt/homebrew/opt/postgresql*/bin", "/usr/local/opt/postgresql*/bin"):
        candidates += sorted((Path(p) for p in glob.glob(pattern)), key=_major_version, reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in SERVER_BINARIES):
            return directory
    return None


def _major_version(path: Path) -> int:
    digits = "".join(c for c in path.parent.name if c.isdigit())
    return int(digits) if digits else 0


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    db: str
    data_dir: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.db}"

    def env(self) -> dict[str, str]:
        """The `DAGSTER_PG_*` variables `config/dagster-postgres.yaml` reads (empty password: trust auth)."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USERNAME": self.user,
                "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": self.db}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The unprivileged user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    if user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *cmd]
    import shlex

    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(cmd)]


def _run(cmd: list[str], timeout: float = 120) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@contextlib.contextmanager
def throwaway_postgres(bin_dir: Path | None = None, *, user: str = "dagster", db: str = "dagster",
                       start_timeout_s: int = 60) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL (see the module docstring); stop it and remove its files on exit."""
    bin_dir = bin_dir or find_pg_bin()
    if bin_dir is None:
        raise FileNotFoundError(NO_POSTGRES)
    os_user = _server_user()
    # Not under pytest's tmp_path: that is private to root (0700), which the server's user could not enter.
    root = Path(tempfile.mkdtemp(prefix="movielens-pg-"))
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data_dir, log_file = root / "data", root / "server.log"

    def stop(mode: str) -> None:
        if (data_dir / "postmaster.pid").exists():  # a server runs (or died without cleaning up)
            with contextlib.suppress(Exception):
                _run(_as_user(os_user, [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", mode, "-w", "stop"]),
                     timeout=90)

    try:
        _run(_as_user(os_user, [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", user, "--auth=trust",
                                "--encoding=UTF8", "--locale=C", "--no-sync"]))
        # fsync off etc.: a throwaway server (a crash loses nothing we keep)
        options = (f"-h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        for attempt in range(3):  # a free port can be taken between choosing and binding it: choose again
            port = _free_port()
            try:
                _run(_as_user(os_user, [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w",
                                        "-t", str(start_timeout_s), "-o", f"{options} -p {port}", "start"]),
                     timeout=start_timeout_s + 30)
                break
            except RuntimeError:
                stop("immediate")
                if attempt == 2:
                    log = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
                    raise RuntimeError(f"PostgreSQL did not start; its log:\n{log}") from None
                time.sleep(0.5)
        createdb = bin_dir / "createdb"
        if os.access(createdb, os.X_OK):
            _run([str(createdb), "-h", "127.0.0.1", "-p", str(port), "-U", user, db])
        else:
            import psycopg2

            conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{db}"')
            conn.close()
        yield PostgresServer("127.0.0.1", port, user, db, data_dir, log_file)
    finally:
        stop("fast")
        shutil.rmtree(root, ignore_errors=True)
