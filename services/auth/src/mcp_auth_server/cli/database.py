"""A database session for one CLI command, on a migrated database."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import ensure_migrated
from mcp_auth_server.db.models import Grant
from mcp_auth_server.settings import AuthSettings, load_settings
from mcp_auth_server.store.grants import is_live


@contextlib.asynccontextmanager
async def command_session() -> AsyncIterator[tuple[AuthSettings, AsyncSession]]:
    settings = load_settings()
    await ensure_migrated(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            yield settings, session
    finally:
        await engine.dispose()


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def when(epoch: int | None) -> str:
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def grant_state(grant: Grant) -> str:
    """A grant's STATE column: live, or why it ended."""
    return "live" if is_live(grant) else (grant.revoked_reason or "ended")
