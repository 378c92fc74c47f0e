"""Automatic key rotation: due keys are replaced once, however many replicas check at the same moment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import SigningKey
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.key_rotation import DAY, activation_delay, rotate_if_due
from mcp_auth_server.store.signing_keys import JWKS_MAX_AGE, KeyRing, ensure_signing_key

from .conftest import BOX, key_count


async def make_old_key(sessions: async_sessionmaker[AsyncSession], age: int) -> None:
    async with sessions() as session:
        await ensure_signing_key(session, BOX, "ES256")
        await session.execute(update(SigningKey).values(created_at=SigningKey.created_at - age))
        await session.commit()


async def check(sessions: async_sessionmaker[AsyncSession], delay: int = 600) -> SigningKey | None:
    async with sessions() as session:
        return await rotate_if_due(session, BOX, "ES256", period_seconds=DAY, activation_delay=delay)


async def test_replicas_checking_at_the_same_moment_add_exactly_one_key(
    replicas: list[async_sessionmaker[AsyncSession]],
) -> None:
    for round_number in range(1, 4):
        await make_old_key(replicas[0], age=2 * DAY)  # every key so far is now two days old
        added = [key for key in await asyncio.gather(*(check(s) for s in replicas)) if key is not None]
        assert len(added) == 1, f"round {round_number}: {len(added)} replicas rotated"
        assert await key_count(replicas[0]) == 1 + round_number


async def test_a_key_younger_than_the_period_is_kept(
    replicas: list[async_sessionmaker[AsyncSession]],
) -> None:
    await make_old_key(replicas[0], age=DAY - 60)
    assert await check(replicas[0]) is None
    assert await key_count(replicas[0]) == 1


async def test_the_new_key_is_published_at_once_and_takes_over_signing_after_the_delay(
    replicas: list[async_sessionmaker[AsyncSession]],
) -> None:
    sessions = replicas[0]
    await make_old_key(sessions, age=2 * DAY)
    ring = KeyRing(sessions, BOX, token_ttl=900)
    await ring.load()
    old = ring.signer().kid
    new = await check(sessions, delay=600)
    assert new is not None
    assert new.activates_at - now() in (599, 600)
    await ring.load()
    assert set(ring.public_keys) == {old, new.kid}
    assert ring.signer().kid == old  # still; the new key waits for every cache to hold it
    async with sessions() as session:
        previous = await session.get(SigningKey, old)
        assert previous is not None
        assert previous.retires_at == new.activates_at  # hand-over at one instant, no overlap or gap


@pytest.mark.parametrize("reload_seconds", [0.5, 30, 3600])
def test_the_activation_delay_outlasts_every_replica_reload_and_every_jwks_cache(
    reload_seconds: float,
) -> None:
    delay = activation_delay(reload_seconds)
    assert delay >= 600  # never shorter than `mcp-auth keys rotate` waits by default
    assert delay > reload_seconds + JWKS_MAX_AGE


async def test_each_replicas_reload_tick_rotates_only_when_the_setting_is_on(
    replicas: list[async_sessionmaker[AsyncSession]],
    module_database: str,
    make_settings: Callable[..., AuthSettings],
) -> None:
    sessions = replicas[0]
    await make_old_key(sessions, age=2 * DAY)

    def app(**settings: object) -> FastAPI:
        return create_app(
            make_settings(auth_database_url=module_database, auth_reload_seconds=0.05, **settings)
        )

    off = app()
    async with off.router.lifespan_context(off):
        await asyncio.sleep(0.3)
    assert await key_count(sessions) == 1

    first, second = app(auth_key_rotation_days=1), app(auth_key_rotation_days=1)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        deadline = time.monotonic() + 5
        while await key_count(sessions) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more ticks of both replicas: no further key
    assert await key_count(sessions) == 2
