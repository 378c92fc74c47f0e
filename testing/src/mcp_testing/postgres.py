"""Fresh, uniquely named PostgreSQL databases for tests on the TEST_DATABASE_URL server, dropped afterwards.

Each test session (and each test that asks for `fresh_postgres_database`) gets a database of its own, so runs
in parallel checkouts or CI never see each other's rows or migrations.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

__all__ = [
    "PostgresUnavailableError",
    "admin_url",
    "database_exists",
    "fresh_postgres_database",
    "postgres_database",
    "temporary_database",
]

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_START_HINT = (
    "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
    "or set TEST_DATABASE_URL to a server where the user may create databases"
)
_T = TypeVar("_T")


class PostgresUnavailableError(RuntimeError):
    pass


def admin_url() -> str:
    """The maintenance database to connect to, as a plain `postgresql://` URL asyncpg accepts."""
    url = urlsplit(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    return urlunsplit(url._replace(scheme=url.scheme.split("+", 1)[0]))


def _database_url(admin: str, name: str, scheme: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(scheme=scheme, path="/" + name))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    # On a thread of its own: asyncio.run on the calling thread would unset the event loop that
    # pytest-asyncio keeps for the session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _connect(admin: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        raise PostgresUnavailableError(
            f"cannot reach the test PostgreSQL server at {_without_password(admin)} ({error}); {_START_HINT}"
        ) from error


async def _create(admin: str, name: str) -> None:
    connection = await _connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop(admin: str, name: str) -> None:
    connection = await _connect(admin)
    try:
        # FORCE terminates connections a test left open (a pool not disposed), which would block the drop.
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _exists(admin: str, name: str) -> bool:
    connection = await _connect(admin)
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await connection.close()


def database_exists(name: str, admin: str | None = None) -> bool:
    return _run(_exists(admin or admin_url(), name))


@contextmanager
def temporary_database(admin: str | None = None) -> Iterator[str]:
    """Creates `mcp_test_<pid>_<random>` and yields its `postgresql+asyncpg://` URL; drops it on exit."""
    admin = admin or admin_url()
    name = f"mcp_test_{os.getpid()}_{secrets.token_hex(4)}"
    _run(_create(admin, name))
    try:
        yield _database_url(admin, name, "postgresql+asyncpg")
    finally:
        _run(_drop(admin, name))


@contextmanager
def _or_fail() -> Iterator[None]:
    """Turns an unreachable server into one clear line per test instead of chained tracebacks."""
    try:
        yield
    except PostgresUnavailableError as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test session's own: its SQLAlchemy URL (`postgresql+asyncpg://…`)."""
    with _or_fail(), temporary_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_database() -> Iterator[str]:
    """A database of this test's own, for tests that must start empty (e.g. migrations up and down)."""
    with _or_fail(), temporary_database() as url:
        yield url
