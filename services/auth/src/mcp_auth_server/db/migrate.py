"""Applying and checking alembic migrations, on Postgres and SQLite alike.

`upgrade` holds a Postgres advisory lock so that two migration Jobs started together (a
Kubernetes rollout, two replicas' init containers) run one after the other, not interleaved.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from mcp_auth_server.db.engine import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every replica; "mcpauth" in ASCII.
ADVISORY_LOCK_ID = 0x6D6370617574680


class DatabaseNotMigrated(Exception):
    """The database is not at the newest migration."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    asyncio.run(_run(url, lambda connection: _locked(connection, "upgrade", revision)))


def downgrade(url: str, revision: str) -> None:
    asyncio.run(_run(url, lambda connection: _locked(connection, "downgrade", revision)))


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def ensure_migrated(url: str) -> None:
    current, head = await current_revision(url), head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"database is at migration {current or 'none'}, the code needs {head}: run `mcp-auth migrate`"
        )


async def _run(url: str, work: object) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(work)  # type: ignore[arg-type]
            await connection.commit()
    finally:
        await engine.dispose()


def _locked(connection: Connection, action: str, revision: str) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
    try:
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
