"""Migrations: agree with the models, and go up, down and up again on Postgres and SQLite."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from mcp_auth_server.db.engine import create_engine
from mcp_auth_server.db.migrate import current_revision, downgrade, head_revision, upgrade
from mcp_auth_server.db.models import Base

MCP_AUTH = str(Path(sys.executable).parent / "mcp-auth")


def _diff(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async def run() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_models_and_migrations_agree_on_postgres(fresh_postgres_database: str) -> None:
    upgrade(fresh_postgres_database)
    assert _diff(fresh_postgres_database) == []


@pytest.fixture(params=["postgres", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    url: str = request.getfixturevalue("fresh_postgres_database")
    return url


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    upgrade(empty_database)
    assert asyncio.run(current_revision(empty_database)) == head_revision()
    assert {"clients", "grants", "refresh_tokens", "signing_keys", "audit_events"} <= _tables(empty_database)
    downgrade(empty_database, "base")
    assert asyncio.run(current_revision(empty_database)) is None
    assert _tables(empty_database) <= {"alembic_version"}
    upgrade(empty_database)
    assert asyncio.run(current_revision(empty_database)) == head_revision()


def test_serve_refuses_an_unmigrated_database(fresh_postgres_database: str) -> None:
    env = {"AUTH_DATABASE_URL": fresh_postgres_database, "AUTH_SECRET_KEY": "s" * 40, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [MCP_AUTH, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "run `mcp-auth migrate`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_command_then_serve_check_passes(fresh_postgres_database: str) -> None:
    env = {"AUTH_DATABASE_URL": fresh_postgres_database, "AUTH_SECRET_KEY": "s" * 40, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [MCP_AUTH, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(current_revision(fresh_postgres_database)) == head_revision()
