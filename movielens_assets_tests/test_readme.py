"""Every command of README.md, run as a new user would, so that a README example can never silently break.

How it works:

- `parse_readme` reads every fenced block of README.md. A ```bash block is run; a block fenced as sh / shell /
  console / zsh fails `test_readme_tables_are_current` (fence it as ```bash so that it is run); any other block
  (no language: a directory tree, toml, ...) is text.
- Each ```bash block runs in a fresh environment of its own: an empty data directory (`MOVIELENS_DATA_DIR`) and
  a not-yet-existing Dagster instance (`DAGSTER_HOME`, created by the block's own `make` / `make dagster-home`),
  `MOVIELENS_DATASET=synthetic-tiny`, `MOVIELENS_RANKING_SHARDS=4` (the README names shard `03`), the checkout as
  the working directory and the checkout's `.venv/bin` first on PATH. A block whose section is in `CONTINUES`
  runs instead in the environment an earlier section's block left (e.g. commands that read what `make demo`
  wrote), after that block.
- The lines of a block run one at a time, in README order, each in its own `bash -c` in the repository root; the
  shell state a line leaves (exported variables, e.g. from `source .venv/bin/activate`, and the cwd) carries to
  the next line of the block. A line fails the test when it exits non-zero or when its entry in `EXPECT` (what
  it must have written or printed) fails.
- Nothing reaches the internet: every line sees local fakes on 127.0.0.1 through the URL variables the code
  reads — GroupLens (`MOVIELENS_GROUPLENS_URL`) serving an `ml-latest-small.zip` built from synthetic data (any
  other release is a 404), TMDb (`TMDB_BASE_URL`) accepting the README's token `eyJ...`, an OpenAI-compatible
  embeddings API (`EMBEDDING_API_BASE_URL`) accepting the README's key `sk-...` — and `HF_HUB_OFFLINE=1`.
- A line that cannot run as written is in `EXCEPTIONS`, the one table of exceptions: `NotRun` (why, and what
  covers it instead), `Instead` (another command is run in its place, and why) or `Server` (a long-running
  command: started in its own process group, its URL polled until it answers, then the group is stopped).
  Every other line is run. An entry of `EXCEPTIONS`, `EXPECT` or `CONTINUES` that names no README line or
  section fails the static test, so none of them can go stale.

The README's commands use the checkout's `.venv` through `make`: this test never installs anything, so it needs
pytest to run from that venv with `make install` up to date (as `make test` guarantees); otherwise it fails
saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.prefix) / "bin"

LINE_TIMEOUT_S = 900
"""A runaway line is stopped after this long (`make demo` on synthetic-tiny takes ~2-4 min on 2 cores)."""
SERVER_READY_S = 120
"""How long a `Server` line may take to answer its URL."""
BASE_ENV = {
    "MOVIELENS_DATASET": "synthetic-tiny",
    "MOVIELENS_RANKING_SHARDS": "4",  # the README materializes shard 03
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
"""Variables every line sees (besides the fakes' URLs, the data directory, the instance and PATH)."""


# ------------------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class NotRun:
    """Not run: `reason`, and what covers the line instead."""

    reason: str
    instead: str


@dataclass(frozen=True)
class Instead:
    """`command` is run in the line's place (same shell state, same `EXPECT` entry): `reason`."""

    command: str
    reason: str


@dataclass(frozen=True)
class Server:
    """A long-running command: started in its own process group, `url` (formatted with the line's environment)
    polled until it answers HTTP 200 with `expect` in the body (POSTing `post` as JSON when given), then the
    process group is stopped (SIGTERM, then SIGKILL) and the port must be free again."""

    url: str
    reason: str
    expect: str = ""
    post: dict | None = None


Entry = NotRun | Instead | Server

# A long-running command of a new section, e.g. `movielens-rec serve --port 8000`, gets an entry such as
#   "movielens-rec serve --port 8000": Server("http://127.0.0.1:8000/", "a server that runs until stopped"),
EXCEPTIONS: dict[str, Entry] = {
    "make ui DAGSTER_HOME=$PWD/.dagster_pg DAGSTER_YAML=config/dagster-postgres.yaml": NotRun(
        "needs a PostgreSQL server at the DAGSTER_PG_* address, which the README leaves to the reader",
        "movielens_assets_tests/test_postgres_instance.py starts a throwaway PostgreSQL and runs parallel shard runs "
        "against an instance made from config/dagster-postgres.yaml"),
    ".venv/bin/movielens-rec serve --port 8000": Server(
        "http://127.0.0.1:8000/healthz", "a server that runs until stopped", expect='"status": "ok"'),
    "make test": NotRun(
        "the test suite itself: running it from inside the suite would recurse",
        "CI runs it (.ci/run: make lint, then make test); this test is part of it"),
    "make ui": Server(
        "http://127.0.0.1:{UI_PORT}/graphql",
        "a server that runs until stopped; UI_PORT (the Makefile's, default 3000) is a free port here so that "
        "a UI already open on 3000 is not in the way",
        expect='"eda_report"', post={"query": "{ assetNodes { assetKey { path } } }"}),
    "TMDB_API_READ_ACCESS_TOKEN=eyJ... MOVIELENS_DATASET=ml-latest-small make demo": Instead(
        "make dagster-home && TMDB_API_READ_ACCESS_TOKEN=eyJ... MOVIELENS_DATASET=ml-latest-small "
        ".venv/bin/python -m movielens_assets.demo --select 'group:ingest,group:tmdb'",
        "what `make demo` runs, restricted to the groups these variables change (download + crawl), against the "
        "local GroupLens and TMDb fakes: the whole pipeline again (~3-5 min on 2 cores) is what the "
        "Quickstart's `make demo` runs already"),
    "EMBEDDING_MODEL=BAAI/bge-m3 EMBEDDING_MAX_SEQ_LENGTH=512 make demo": NotRun(
        "downloads BAAI/bge-m3 (~2.3 GB) from the Hugging Face hub, which has no local stand-in here",
        "the sentence-transformers backend runs in the Quickstart's `make demo` (the packaged MiniLM) and on a "
        "local model directory in movielens_assets_tests/core/text"),
    "EMBEDDING_BACKEND=openai OPENAI_API_KEY=sk-... make demo": Instead(
        "make dagster-home && EMBEDDING_BACKEND=openai OPENAI_API_KEY=sk-... "
        ".venv/bin/python -m movielens_assets.demo --select 'group:ingest,group:tmdb,group:features'",
        "what `make demo` runs, restricted to the groups up to the embeddings (what these variables change), "
        "against the local OpenAI-compatible fake: the whole pipeline again (~3-5 min on 2 cores) is what the "
        "Quickstart's `make demo` runs already"),
}
"""README command (as written, its trailing comment removed) -> why it is not run as written, and what is done."""

CONTINUES: dict[str, str] = {"Getting recommendations": "Quickstart"}
"""Section heading -> the earlier section whose environment (data directory, instance) its block continues,
e.g. `{"Getting recommendations": "Quickstart"}` for commands that read what `make demo` materialized."""


# ------------------------------------------------------------------------------------------ expectations
@dataclass
class LineRun:
    """What one line did: handed to its `EXPECT` entry."""

    command: str
    output: str
    started: float
    seconds: float
    lake: Path
    home: Path
    state: str
    fakes: Fakes

    def written(self, relative: str, root: Path | None = None) -> Path:
        """`lake/relative` (or `root/relative`), asserted to exist and to have been written by this line."""
        path = (root or self.lake) / relative
        assert path.exists(), f"{path} does not exist"
        assert path.stat().st_mtime >= self.started - 1, f"{path} was not written by this command"
        return path

    def printed(self, *texts: str) -> None:
        for text in texts:
            assert text in self.output, f"{text!r} not in the output"


def _demo_succeeded(r: LineRun) -> None:
    r.printed("— SUCCESS")
    checks = re.search(r"asset checks: (\d+)/(\d+) passed", r.output)
    assert checks and checks[1] == checks[2] and int(checks[2]) > 0, "not every asset check passed"


def _make_demo(r: LineRun) -> None:
    _demo_succeeded(r)
    for path in ("processed/ratings.parquet", "reports/EDA_REPORT.md", "metrics/recall.json", "metrics/ranking.json",
                 "ranking/recommendations/last_n/ranked.parquet"):
        r.written(path)
    r.printed("recall metrics", "ranking metrics", "[heavy user]", "[light user]", "the UnifiedRanker's list")
    assert (r.home / "dagster.yaml").is_file() and any(r.home.rglob("*.db")), "runs not recorded in DAGSTER_HOME"


def _instance_exported(r: LineRun) -> None:
    assert f'declare -x DAGSTER_HOME="{r.home}"' in r.state, "DAGSTER_HOME is not the instance `make` uses"
    assert "declare -x VIRTUAL_ENV=" in r.state, "the venv is not activated"


def _ingest_group(r: LineRun) -> None:
    for table in ("ratings", "movies", "tags", "links"):
        r.written(f"processed/{table}.parquet")
    assert r.written("reports/EDA_REPORT.md").read_text().startswith("# EDA report — `synthetic-tiny`")


def _ratings_alone(r: LineRun) -> None:
    r.written("processed/ratings.parquet")
    assert (r.lake / "processed/tags.parquet").stat().st_mtime < r.started, "more than the one asset ran"


def _several_groups(r: LineRun) -> None:
    for path in ("processed/tmdb/tmdb_movie.parquet", "features/item_text.parquet", "features/item_embeddings",
                 "recall/candidates/last_n/merged.parquet", "metrics/recall.json"):
        r.written(path)


def _ml_latest_small(r: LineRun) -> None:
    assert r.fakes.grouplens.count("/ml-latest-small.zip") >= 1, "ml-latest-small.zip was not downloaded"
    r.written("raw/ml-latest-small/.verified")
    assert "`ml-latest-small`" in r.written("reports/EDA_REPORT.md").read_text()


def _demo_ingest(r: LineRun) -> None:
    _demo_succeeded(r)
    assert r.written("reports/EDA_REPORT.md").read_text().startswith("# EDA report — `synthetic-tiny`")


def _tmdb_crawl(r: LineRun) -> None:
    import pyarrow.parquet as pq

    _demo_succeeded(r)
    fetched = [x for x in r.fakes.tmdb.movie_records() if x.successful and x.auth == "bearer"]
    assert fetched, "no movie was fetched from the TMDb fake with the token"
    rows = pq.read_metadata(r.written("processed/tmdb/tmdb_movie.parquet")).num_rows
    assert rows >= len({x.tmdb_id for x in fetched}), "the fetched movies are not in tmdb_movie"


def _openai_embeddings(r: LineRun) -> None:
    import pyarrow.parquet as pq

    _demo_succeeded(r)
    texts = pq.read_metadata(r.written("features/item_text.parquet")).num_rows
    assert r.fakes.openai.embedded_inputs() >= texts > 0, "the movie texts were not embedded through the API"
    r.written("features/item_embeddings")


_M = "dagster asset materialize -m movielens_assets.definitions --select"
EXPECT: dict[str, Callable[[LineRun], None]] = {
    "make demo": _make_demo,
    ".venv/bin/movielens-rec recommend --user 42 -k 10": lambda r: r.printed("Top 10 for user 42 — "),
    ".venv/bin/movielens-rec recommend --liked 1,2,3 -k 5": lambda r: r.printed(
        "Top 5 for an anonymous visitor — neighbours of the liked movies"),
    ".venv/bin/movielens-rec similar --movie 1 -k 10": lambda r: r.printed("Movies similar to "),
    "make lint": lambda r: r.printed("All checks passed!", "Success: no issues found"),
    "make install dagster-home": lambda r: r.written("dagster.yaml", root=r.home),
    "source .venv/bin/activate && export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster_home}": _instance_exported,
    f"{_M} 'group:ingest'": _ingest_group,
    f"{_M} ratings": _ratings_alone,
    f"{_M} 'group:tmdb,group:features,group:recall'": _several_groups,
    f"{_M} '+ranking_samples' --partition 03": lambda r: r.written("ranking/samples/last_n/shard=03"),
    f"{_M} ranking_samples --partition 00": lambda r: r.written("ranking/samples/last_n/shard=00"),
    f"MOVIELENS_DATASET=ml-latest-small {_M} 'group:ingest'": _ml_latest_small,
    "python -m movielens_assets.demo --select 'group:ingest'": _demo_ingest,
    "dagster definitions validate -m movielens_assets.definitions": lambda r: r.printed("Validation successful"),
    "TMDB_API_READ_ACCESS_TOKEN=eyJ... MOVIELENS_DATASET=ml-latest-small make demo": _tmdb_crawl,
    "EMBEDDING_BACKEND=openai OPENAI_API_KEY=sk-... make demo": _openai_embeddings,
}
"""README command -> what it must have written / printed, beyond exiting 0 (for a `Server`: its `expect`)."""


# --------------------------------------------------------------------------------------------- the parser
@dataclass(frozen=True)
class Command:
    text: str
    """The command as written, continuation lines joined, its trailing comment removed."""
    line: int
    """Its line number in README.md."""


@dataclass(frozen=True)
class Block:
    section: str
    """The heading the block is under."""
    id: str
    line: int
    commands: tuple[Command, ...]


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
SHELL_LANGS = {"sh", "shell", "console", "zsh", "shell-session", "bash-session"}
"""Fences that look like commands but are not run: an error (use ```bash)."""


def strip_comment(line: str) -> str:
    """`line` without its trailing `# comment` (a `#` at the start of a word, outside quotes)."""
    quote: str | None = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_readme(text: str) -> tuple[list[Block], list[str]]:
    """The ```bash blocks of `text` (README order) and the errors found (shell-like fences not marked bash)."""
    blocks: list[Block] = []
    errors: list[str] = []
    section = "(top)"
    lines = text.splitlines()
    per_section: dict[str, int] = {}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].startswith("#"):
                section = lines[i].lstrip("#").strip()
            i += 1
            continue
        start, indent, fence, lang = i, m["indent"], m["fence"], m["lang"].lower()
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append((i + 1, lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip()))
            i += 1
        i += 1
        if lang in SHELL_LANGS:
            errors.append(f"README.md:{start + 1}: a ```{lang} block is not run by this test: fence it as ```bash")
        if lang != "bash":
            continue
        commands: list[Command] = []
        pending: list[str] = []
        first = 0
        for number, raw in body:
            if not pending:
                first = number
                if not raw.strip() or raw.lstrip().startswith("#"):
                    continue
            if raw.rstrip().endswith("\\"):
                pending.append(raw.rstrip()[:-1])
                continue
            pending.append(raw)
            commands.append(Command(strip_comment(" ".join(p.strip() for p in pending)), first))
            pending = []
        if pending:
            errors.append(f"README.md:{first}: a continuation line ends the block")
        per_section[section] = per_section.get(section, 0) + 1
        blocks.append(Block(section, f"{_slug(section)}-{per_section[section]}", start + 1, tuple(commands)))
    return blocks, errors


BLOCKS, PARSE_ERRORS = parse_readme(README.read_text(encoding="utf-8"))


def _commands() -> dict[str, Command]:
    return {c.text: c for b in BLOCKS for c in b.commands}


# ---------------------------------------------------------------------------------------- the static test
def test_readme_tables_are_current():
    """Every ```bash block is parsed; every entry of EXCEPTIONS / EXPECT / CONTINUES names a README line or
    section (a renamed command must be renamed in the tables too)."""
    assert not PARSE_ERRORS, "\n".join(PARSE_ERRORS)
    assert BLOCKS and all(b.commands for b in BLOCKS), "a ```bash block without commands"
    commands = _commands()
    stale = [f"EXCEPTIONS[{k!r}]" for k in EXCEPTIONS if k not in commands]
    stale += [f"EXPECT[{k!r}]" for k in EXPECT if k not in commands]
    sections = [b.section for b in BLOCKS]
    for later, earlier in CONTINUES.items():
        if later not in sections or earlier not in sections or sections.index(earlier) > sections.index(later):
            stale.append(f"CONTINUES[{later!r}] = {earlier!r} (both must be README sections, the second earlier)")
    assert not stale, "these entries name no README command / section:\n" + "\n".join(stale)
    servers = [k for k, v in EXCEPTIONS.items() if isinstance(v, Server)]
    assert all(k not in EXPECT for k in servers), "a Server's expectation is its `expect`"


def test_strip_comment_and_continuations():
    assert strip_comment("make demo   # installs, then runs") == "make demo"
    assert strip_comment("echo '#not' \"a # b\" x#y  # c") == "echo '#not' \"a # b\" x#y"
    assert strip_comment("echo ${#PATH}") == "echo ${#PATH}"
    blocks, errors = parse_readme("# S\n```bash\n# note\nA=1 \\\n  cmd --x  # c\n\nnext\n```\n```sh\nls\n```\n")
    assert [(c.text, c.line) for c in blocks[0].commands] == [("A=1 cmd --x", 4), ("next", 7)]
    assert errors and "```sh" in errors[0]


# ------------------------------------------------------------------------------------------------ the fakes
@dataclass
class Fakes:
    grouplens: Any
    """StaticHTTPServer serving ml-latest-small.zip and its .md5."""
    tmdb: Any
    """FakeTMDb with the synthetic payloads of those movies."""
    openai: Any
    """FakeEmbeddingsAPI (text-embedding-3-small, 1536-d)."""

    def env(self) -> dict[str, str]:
        return {"MOVIELENS_GROUPLENS_URL": self.grouplens.url, "TMDB_BASE_URL": self.tmdb.base_url,
                "EMBEDDING_API_BASE_URL": self.openai.base_url}


def _ml_latest_small_zip(tmp: Path) -> tuple[bytes, dict[int, dict]]:
    """A GroupLens-format `ml-latest-small.zip` (synthetic data) and the TMDb payloads of its movies."""
    from movielens_assets.core.data.synthetic import generate_movielens, iter_tmdb_payloads, parse_synthetic_name

    out = tmp / "ml-latest-small-source"
    generate_movielens(parse_synthetic_name("synthetic-tiny"), out, seed=7)
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("ratings.csv", "movies.csv", "tags.csv", "links.csv"):
            z.write(out / name, f"ml-latest-small/{name}")
    return data.getvalue(), {int(p["id"]): p for p in iter_tmdb_payloads(out)}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> Iterator[Fakes]:
    from movielens_assets_tests.servers import serve_static
    from movielens_assets_tests.servers.openai_fake import FakeEmbeddingsAPI
    from movielens_assets_tests.servers.tmdb_fake import FakeTMDb

    archive, payloads = _ml_latest_small_zip(tmp_path_factory.mktemp("fakes"))
    files = {"ml-latest-small.zip": archive,
             "ml-latest-small.zip.md5": f"{hashlib.md5(archive).hexdigest()}  ml-latest-small.zip\n"}
    with serve_static(files) as grouplens, FakeTMDb(payloads, token="eyJ...") as tmdb, \
            FakeEmbeddingsAPI(key="sk-...", models={"text-embedding-3-small": 1536}) as openai:
        yield Fakes(grouplens, tmdb, openai)


# ----------------------------------------------------------------------------------------------- the runner
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port` (a bind test would also see TIME_WAIT leftovers)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


_NOT_INHERITED = ("DAGSTER_HOME", "VIRTUAL_ENV", "PYTHONPATH", "BASH_ENV", "ENV", "MAKEFLAGS", "MFLAGS",
                  "MAKELEVEL", "MAKEOVERRIDES", "UI_PORT")


def _fresh_env(fakes: Fakes) -> dict[str, str]:
    """The process environment without anything the project reads, plus the test's settings."""
    from movielens_assets.settings import env_names

    drop = set(env_names()) | set(_NOT_INHERITED)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(BASE_ENV)
    env.update(fakes.env())
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whichever checkout the venv was installed from
    env["UI_PORT"] = str(_free_port())
    return env


@dataclass
class Shell:
    """One block's environment: its data directory, instance, the state its lines leave, their logs."""

    dir: Path
    env: dict[str, str]
    fakes: Fakes
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def lake(self) -> Path:
        return self.dir / "lake"

    @property
    def home(self) -> Path:
        return self.dir / "home"

    @property
    def state(self) -> Path:
        return self.dir / "state.sh"

    def _log(self, command: Command) -> Path:
        return self.dir / f"line{command.line}.log"

    def _popen(self, script: str, log: Path) -> subprocess.Popen:
        with log.open("w") as out:
            return subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        """SIGTERM to the line's process group, 30 s to exit, then SIGKILL to whatever of the group is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass

    def run(self, command: Command, text: str) -> tuple[int, str, float, float]:
        """Run `text` (the README line or its stand-in) after the block's state; (rc, output, start, seconds)."""
        state = shlex.quote(str(self.state))
        script = (f"source {state}\n{text}\n__readme_rc=$?\n"
                  f"{{ export -p; printf 'cd %q\\n' \"$PWD\"; }} > {state}\nexit $__readme_rc\n")
        log = self._log(command)
        started = time.time()
        proc = self._popen(script, log)
        try:
            rc = proc.wait(timeout=LINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._stop(proc)
            rc = 124
        return rc, log.read_text(errors="replace"), started, time.time() - started

    def serve(self, command: Command, server: Server) -> tuple[bool, str, float]:
        """Start the line, poll its URL, stop it; (answered with `expect`, output, seconds until it answered)."""
        url = server.url.format_map(self.env)
        port = int(re.search(r"://[^/:]+:(\d+)", url)[1])  # type: ignore[index]
        assert not _listening(port), f"port {port} is already taken: `{command.text}` cannot be tested"
        log = self._log(command)
        started = time.time()
        proc = self._popen(f"source {shlex.quote(str(self.state))}\n{command.text}\n", log)
        answered = False
        try:
            while time.time() - started < SERVER_READY_S and proc.poll() is None and not answered:
                try:
                    data = json.dumps(server.post).encode() if server.post is not None else None
                    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=5) as response:
                        answered = response.status == 200 and server.expect in response.read().decode(errors="replace")
                except OSError:
                    pass
                if not answered:
                    time.sleep(1)
        finally:
            seconds = time.time() - started
            self._stop(proc)
        deadline = time.time() + 30
        while _listening(port) and time.time() < deadline:
            time.sleep(0.5)
        assert not _listening(port), f"`{command.text}` still listens on {port} after its process group was stopped"
        return answered, log.read_text(errors="replace"), seconds


@dataclass
class Session:
    """The blocks run so far in this test session (a continued block runs after the one it continues)."""

    tmp: Path
    fakes: Fakes
    shells: dict[str, Shell] = field(default_factory=dict)
    """Section -> the environment its last block left."""
    done: set[str] = field(default_factory=set)

    def run_block(self, block: Block) -> Shell:
        if block.id in self.done:
            return self.shells[block.section]
        earlier = CONTINUES.get(block.section)
        if earlier:
            for b in BLOCKS:
                if b.section == earlier:
                    self.run_block(b)
            shell = self.shells[earlier]
        else:
            directory = self.tmp / block.id
            directory.mkdir()
            env = _fresh_env(self.fakes)
            env["MOVIELENS_DATA_DIR"] = str(directory / "lake")
            env["DAGSTER_HOME"] = str(directory / "home")  # created by the block's make, as for a new user
            shell = Shell(directory, env, self.fakes)
            shell.state.write_text("")
        self.done.add(block.id)  # a failed block is not re-run for the blocks continuing it
        self.shells[block.section] = shell
        for command in block.commands:
            _run_line(shell, command)
        return shell


def _where(command: Command) -> str:
    return f"README.md:{command.line}: `{command.text}`"


def _run_line(shell: Shell, command: Command) -> None:
    entry = EXCEPTIONS.get(command.text)
    if isinstance(entry, NotRun):
        print(f"not run  {_where(command)} — {entry.reason}")
        return
    if isinstance(entry, Server):
        answered, output, seconds = shell.serve(command, entry)
        shell.timings.append((command.text, seconds))
        assert answered, (f"{_where(command)} did not answer {entry.url.format_map(shell.env)} with "
                          f"{entry.expect!r} within {SERVER_READY_S}s; its output:\n{output[-4000:]}")
        print(f"{seconds:7.1f}s  {_where(command)} (server: answered, stopped)")
        return
    text = entry.command if isinstance(entry, Instead) else command.text
    rc, output, started, seconds = shell.run(command, text)
    shell.timings.append((command.text, seconds))
    ran = f"{_where(command)}" + (f" (run instead: `{text}`)" if text != command.text else "")
    assert rc == 0, f"{ran} exited {rc} after {seconds:.0f}s; the end of its output:\n{output[-6000:]}"
    check = EXPECT.get(command.text)
    if check is not None:
        run = LineRun(text, output, started, seconds, shell.lake, shell.home, shell.state.read_text(),
                      shell.fakes)
        try:
            check(run)
        except AssertionError as exc:
            raise AssertionError(f"{ran} exited 0 but: {exc}\nthe end of its output:\n{output[-4000:]}") from None
    print(f"{seconds:7.1f}s  {ran}")


@pytest.fixture(scope="module")
def session(tmp_path_factory, fakes) -> Session:
    if (ROOT / ".venv").resolve() != Path(sys.prefix).resolve():
        pytest.fail(f"the README's commands use {ROOT / '.venv'} (`make install`); this test runs from "
                    f"{sys.prefix}: run it with {ROOT / '.venv/bin/python'} -m pytest (or make test)")
    env = _fresh_env(fakes)
    stale = subprocess.run(["make", "-q", "install"], cwd=ROOT, env=env, capture_output=True)
    if stale.returncode != 0:
        pytest.fail("`make install` is not up to date (.venv/.install-stamp older than pyproject.toml or "
                    "constraints.txt): the README's `make` commands would reinstall the venv; run `make install` "
                    "first — this test never installs")
    return Session(tmp_path_factory.mktemp("readme"), fakes)


@pytest.mark.slow
@pytest.mark.timeout(4 * LINE_TIMEOUT_S)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, session: Session):
    """Every line of one ```bash block, in order, in a fresh environment (see the module docstring)."""
    start = time.time()
    shell = session.run_block(block)
    print(f"README.md:{block.line} [{block.section}]: {time.time() - start:.1f}s in {shell.dir}")

