"""Applying and checking alembic migrations, on Postgres and SQLite alike.

`upgrade` holds a Postgres advisory lock so that two migration Jobs started together (a
Kubernetes rollout, two replicas' init containers) run one after the other, not interleaved.
Checking whether a database is current (what every command does first) needs neither alembic nor
the migration scripts loaded: the head is read from the scripts' `revision` lines, the database's
revision with one query. A connection that fails is explained in one line (db/problems.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text

from mcp_auth_server.db.engine import create_engine
from mcp_auth_server.db.problems import DatabaseProblem, explain
from mcp_auth_server.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every replica; "mcpauth" in ASCII.
ADVISORY_LOCK_ID = 0x6D6370617574680
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w-]+)['\"]?", re.MULTILINE)
log = logging.getLogger(__name__)


class DatabaseNotMigrated(ConfigurationError):
    """The database is not at the newest migration."""


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest migration: the one revision no other script names as its down_revision."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(script.read_text()):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"migrations have several heads: {sorted(heads)}")
    return next(iter(heads), None)


def upgrade(url: str, revision: str = "head", *, wait: float = 0) -> None:
    """Migrate to `revision`; with `wait`, keep retrying an unreachable database for that many seconds."""
    deadline, reported = time.monotonic() + wait, ""
    while True:
        try:
            asyncio.run(_run(url, lambda connection: _locked(connection, "upgrade", revision)))
            return
        except DatabaseProblem as problem:
            if not problem.retryable or time.monotonic() >= deadline:
                raise
            if str(problem) != reported:  # once per distinct reason, not once a second
                reported = str(problem)
                log.warning("waiting up to %.0f s for the database: %s", wait, problem)
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def downgrade(url: str, revision: str) -> None:
    asyncio.run(_run(url, lambda connection: _locked(connection, "downgrade", revision)))


async def current_revision(url: str) -> str | None:
    async def read(connection: Any) -> str | None:
        revision: str | None = await connection.run_sync(_stamped_revision)
        return revision

    revision: str | None = await _with_connection(url, read)
    return revision


async def ensure_migrated(url: str) -> None:
    current, head = await current_revision(url), head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"database is at migration {current or 'none'}, the code needs {head}: run `mcp-auth migrate`"
        )


def _stamped_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision: str | None = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return revision


async def _run(url: str, work: Callable[[Connection], None]) -> None:
    async def apply(connection: Any) -> None:
        await connection.run_sync(work)
        await connection.commit()

    await _with_connection(url, apply)


async def _with_connection(url: str, work: Callable[[Any], Any]) -> Any:
    """Run `work` on a connection; a failure to connect becomes a one-line `DatabaseProblem`."""
    engine = create_engine(url)
    try:
        connection = engine.connect()
        try:
            await connection.start()
        except Exception as exc:
            problem = explain(exc, url)
            if problem is None:
                raise
            raise problem from None
        try:
            return await work(connection)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _locked(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

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
