"""Signing keys with several replicas: changes to the key set take turns, so none is made twice."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.db.models import SigningKey
from mcp_auth_server.store.signing_keys import KeyRing, add_key, ensure_signing_key

from .conftest import BOX, key_count


async def warm(replicas: list[async_sessionmaker[AsyncSession]]) -> None:
    """Open a connection in every pool first, as running replicas have, so the race is a real one."""
    for sessions in replicas:
        async with sessions() as session:
            await session.execute(select(1))


async def test_replicas_starting_together_on_an_empty_database_create_one_first_key(
    replicas: list[async_sessionmaker[AsyncSession]],
) -> None:
    await warm(replicas)

    async def start(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            await ensure_signing_key(session, BOX, "ES256")

    await asyncio.gather(*(start(sessions) for sessions in replicas))
    assert await key_count(replicas[0]) == 1
    rings = [KeyRing(sessions, BOX, token_ttl=900) for sessions in replicas]
    for ring in rings:
        await ring.load()
    assert len({ring.signer().kid for ring in rings}) == 1  # every replica signs with the same key


async def test_rotations_at_the_same_moment_leave_one_signer_at_a_time(
    replicas: list[async_sessionmaker[AsyncSession]],
) -> None:
    await warm(replicas)
    async with replicas[0]() as session:
        await ensure_signing_key(session, BOX, "ES256")

    async def rotate(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            await add_key(session, BOX, "ES256", activation_delay=0)

    await asyncio.gather(*(rotate(sessions) for sessions in replicas))
    async with replicas[0]() as session:
        keys = (await session.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
    assert len(keys) == 1 + len(replicas)
    # Each rotation saw the one before it and ended it: exactly one key is left without an end.
    assert sum(key.retires_at is None for key in keys) == 1
