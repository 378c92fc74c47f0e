"""Test databases are really created on the server, are the tests' own, and are dropped afterwards."""

import re

import asyncpg
import pytest

from mcp_testing.postgres import PostgresUnavailableError, admin_url, database_exists, temporary_database


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_the_session_database_accepts_tables(postgres_database: str) -> None:
    assert postgres_database.startswith("postgresql+asyncpg://")
    assert re.fullmatch(r"mcp_test_\d+_[0-9a-f]{8}", _name(postgres_database))
    connection = await asyncpg.connect(_asyncpg_dsn(postgres_database))
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS probe (id int)")
        assert await connection.fetchval("SELECT current_database()") == _name(postgres_database)
    finally:
        await connection.close()


def test_a_fresh_database_is_another_one(postgres_database: str, fresh_postgres_database: str) -> None:
    assert _name(fresh_postgres_database) != _name(postgres_database)
    assert database_exists(_name(fresh_postgres_database))


def test_a_temporary_database_is_dropped_even_when_the_test_fails() -> None:
    names: list[str] = []

    def failing_test() -> None:
        with temporary_database() as url:
            names.append(_name(url))
            assert database_exists(_name(url))
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    assert not database_exists(names[0])


async def test_connections_left_open_do_not_block_the_drop() -> None:
    with temporary_database() as url:
        leftover = await asyncpg.connect(_asyncpg_dsn(url))
    assert not database_exists(_name(url))
    assert not await _still_usable(leftover)
    leftover.terminate()


async def _still_usable(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return False
    return True


def test_the_admin_url_drops_the_sqlalchemy_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+asyncpg://u@db.example:6543/admin?sslmode=disable")
    assert admin_url() == "postgresql://u@db.example:6543/admin?sslmode=disable"


def test_an_unreachable_server_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch, free_port: int) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", f"postgresql://postgres:hunter2@127.0.0.1:{free_port}/postgres")
    with pytest.raises(PostgresUnavailableError) as raised, temporary_database():
        pass
    assert "pg_ctlcluster --skip-systemctl-redirect" in str(raised.value)
    assert "TEST_DATABASE_URL" in str(raised.value)
    assert "hunter2" not in str(raised.value)
