"""Fixtures for the store's tests: several replicas' connection pools on a database of the module's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.db.models import SigningKey
from mcp_testing.postgres import temporary_database

from ..conftest import TEST_SECRET

BOX = SecretBox(TEST_SECRET.encode(), "signing-key")
REPLICAS = 4


@pytest.fixture(scope="module")
def module_database() -> Iterator[str]:
    """A database of the test module's own: these tests change which key signs."""
    with temporary_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
async def replicas(module_database: str) -> AsyncIterator[list[async_sessionmaker[AsyncSession]]]:
    """Session factories on separate engines (connection pools), as separate processes would have.

    Each test starts with no signing keys.
    """
    engines = [create_engine(module_database) for _ in range(REPLICAS)]
    try:
        factories = [create_session_factory(engine) for engine in engines]
        async with factories[0]() as session:
            await session.execute(delete(SigningKey))
            await session.commit()
        yield factories
    finally:
        for engine in engines:
            await engine.dispose()


async def key_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SigningKey)) or 0)
