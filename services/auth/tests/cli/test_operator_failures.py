"""What an operator meets when configuration or the database is wrong: one line, exit status 2, for every
command (issue 13, finding 2), and `migrate --wait` riding out a database that is not up yet (finding 3).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from mcp_auth_server.db.problems import explain
from mcp_auth_server.db.urls import async_database_url
from mcp_testing.processes import free_port, venv_script

from ..conftest import TEST_SECRET

COMMANDS = [["serve"], ["migrate"], ["clients", "list"], ["keys", "list"], ["resources", "list"]]


def run(
    *args: str, cwd: Path | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("mcp-auth"), *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mcp-auth: "), lines[0]
    return lines[0]


def with_scheme(url: str, scheme: str, **changes: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme=scheme, **changes))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unreachable_database_names_host_and_port(command: list[str]) -> None:
    port = free_port()
    line = one_line_exit_2(
        run(
            *command,
            AUTH_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x",
            AUTH_SECRET_KEY=TEST_SECRET,
        )
    )
    assert f"AUTH_DATABASE_URL: cannot reach the database at 127.0.0.1:{port} (connection refused)" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unresolvable_database_host(command: list[str]) -> None:
    line = one_line_exit_2(
        run(*command, AUTH_DATABASE_URL="postgresql://postgres@db.invalid/x", AUTH_SECRET_KEY=TEST_SECRET)
    )
    assert "AUTH_DATABASE_URL: cannot resolve the database host 'db.invalid'" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_missing_database(command: list[str], migrated_database: str) -> None:
    url = with_scheme(migrated_database, "postgresql", path="/no_such_database_13")
    line = one_line_exit_2(run(*command, AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET))
    assert 'refused the connection: database "no_such_database_13" does not exist' in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_missing_role(command: list[str], migrated_database: str) -> None:
    parts = urlsplit(migrated_database)
    url = with_scheme(
        migrated_database, "postgresql", netloc=f"no_such_role_13@{parts.hostname}:{parts.port}"
    )
    line = one_line_exit_2(run(*command, AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET))
    assert 'role "no_such_role_13" does not exist' in line


def test_refused_password_is_explained() -> None:
    """The shared test server trusts every local connection, so the refusal is built as asyncpg raises it."""
    refused = asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "app"')
    wrapped = DBAPIError("connect", None, refused)
    problem = explain(wrapped, "postgresql+asyncpg://app:secret@db.example:6543/app")
    assert problem is not None
    assert not problem.retryable
    assert str(problem) == (
        "AUTH_DATABASE_URL: db.example:6543 refused the connection: password authentication failed for the "
        "user; check the user and password"
    )
    assert "secret" not in str(problem)


@pytest.mark.parametrize(
    "url",
    ["mysql://user@db/app", "postgresql+psycopg2://user@db/app", "just-a-host:5432"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unsupported_url(command: list[str], url: str) -> None:
    line = one_line_exit_2(run(*command, AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET))
    assert line.startswith("mcp-auth: AUTH_DATABASE_URL: ")
    assert "expected postgresql://USER:PASSWORD@HOST:5432/DATABASE" in line


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_provider_urls_run_on_asyncpg(scheme: str, fresh_postgres_database: str) -> None:
    """What providers hand out (`postgres://…?sslmode=disable`) is what the service accepts."""
    url = with_scheme(fresh_postgres_database, scheme, query="sslmode=disable")
    migrated = run("migrate", AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET)
    assert migrated.returncode == 0, migrated.stderr
    listed = run("clients", "list", AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:2] == ["CLIENT_ID", "ORIGIN"]


def test_async_database_url() -> None:
    assert async_database_url("postgres://u:p@h:1/d") == "postgresql+asyncpg://u:p@h:1/d"
    assert async_database_url("postgresql://u@h/d?sslmode=require&x=1") == (
        "postgresql+asyncpg://u@h/d?ssl=require&x=1"
    )
    assert async_database_url("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert async_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


class DelayedProxy:
    """A TCP port that starts forwarding to Postgres only after `delay` seconds (a database starting up)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.port = free_port()
        self._target, self._delay = target, delay
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(),), daemon=True
        )

    async def _serve(self) -> None:
        await asyncio.sleep(self._delay)
        server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        async with server:
            await self._stop.wait()

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    def __enter__(self) -> DelayedProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)


@pytest.fixture
def late_database(fresh_postgres_database: str) -> Iterator[str]:
    parts = urlsplit(fresh_postgres_database)
    with DelayedProxy((parts.hostname or "127.0.0.1", parts.port or 5432), delay=2.0) as proxy:
        yield with_scheme(
            fresh_postgres_database, "postgresql", netloc=f"{parts.username}@127.0.0.1:{proxy.port}"
        )


def test_migrate_waits_for_a_database_that_comes_up(late_database: str) -> None:
    started = time.monotonic()
    result = run("migrate", "--wait", "30", AUTH_DATABASE_URL=late_database, AUTH_SECRET_KEY=TEST_SECRET)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2.0, "it connected before the database was there"
    assert "waiting up to 30 s for the database" in result.stderr
    assert result.stdout.strip() == "database is at the newest migration"


def test_migrate_gives_up_after_waiting() -> None:
    port = free_port()
    started = time.monotonic()
    result = run(
        "migrate",
        "--wait",
        "2",
        AUTH_DATABASE_URL=f"postgresql://u@127.0.0.1:{port}/x",
        AUTH_SECRET_KEY=TEST_SECRET,
    )
    assert time.monotonic() - started >= 2.0
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mcp-auth: AUTH_DATABASE_URL: cannot reach the database at 127.0.0.1:{port}")
    )


def test_migrate_does_not_wait_for_a_refusal(migrated_database: str) -> None:
    """Waiting cannot create a missing database: fail at once."""
    url = with_scheme(migrated_database, "postgresql", path="/no_such_database_13")
    started = time.monotonic()
    one_line_exit_2(run("migrate", "--wait", "30", AUTH_DATABASE_URL=url, AUTH_SECRET_KEY=TEST_SECRET))
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["clients", "list"]], ids=" ".join)
def test_run_bare_where_nothing_can_be_written_says_what_to_set(command: list[str], tmp_path: Path) -> None:
    """The image run with no settings: its working directory is not writable (here: .data is a file)."""
    (tmp_path / ".data").write_text("not a directory")
    # As the Dockerfile sets them.
    line = one_line_exit_2(run(*command, cwd=tmp_path, AUTH_HOST="0.0.0.0", AUTH_PORT="9000"))  # noqa: S104
    assert "AUTH_SECRET_KEY and AUTH_DATABASE_URL: not set" in line
    assert "AUTH_ISSUER (https://...), AUTH_SECRET_KEY, AUTH_DATABASE_URL and an upstream" in line


IMPORTS_PROBE = """
import sys
from mcp_auth_server.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ["sqlalchemy", "alembic", "fastapi", "uvicorn", "mcp", "pydantic", "jinja2", "redis", "httpx"]
print("imported:", *sorted(name for name in heavy if name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], set()),
        (["clients", "--help"], {"sqlalchemy", "pydantic"}),
        (["clients", "list"], {"sqlalchemy", "pydantic"}),
        (["migrate", "--help"], set()),
    ],
)
def test_each_command_imports_only_what_it_needs(args: list[str], allowed: set[str], tmp_path: Path) -> None:
    """The CLI's speed comes from not importing the web stack, alembic or the MCP SDK it does not use."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, *args],
        env={"PATH": "/usr/bin:/bin", "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (report,) = [line for line in result.stderr.splitlines() if line.startswith("imported:")]
    imported = set(report.split()[1:])
    assert imported <= allowed, f"mcp-auth {' '.join(args)} imported {sorted(imported - allowed)}"
