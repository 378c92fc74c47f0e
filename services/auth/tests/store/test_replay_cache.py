"""Single-use identifiers are single-use across replicas, on Redis and on the database alike."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from mcp_auth_server.clock import now
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.models import UsedIdentifier
from mcp_auth_server.store.housekeeping import prune
from mcp_auth_server.store.replay_cache import DatabaseReplayCache, RedisReplayCache, ReplayCache

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["redis", "database"])
async def two_replicas(
    request: pytest.FixtureRequest, module_database: str
) -> AsyncIterator[tuple[ReplayCache, ReplayCache]]:
    """Two replicas' caches: separate Redis connections, or separate connection pools."""
    if request.param == "redis":
        prefix = f"test-replay-{secrets.token_hex(4)}:"  # Redis is shared by every test run on the machine
        first, second = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
        try:
            yield RedisReplayCache(first, prefix), RedisReplayCache(second, prefix)
        finally:
            keys = [key async for key in first.scan_iter(match=f"{prefix}*")]
            if keys:
                await first.delete(*keys)
            await first.aclose()
            await second.aclose()
    else:
        engines = [create_engine(module_database), create_engine(module_database)]
        try:
            yield DatabaseReplayCache(engines[0]), DatabaseReplayCache(engines[1])
        finally:
            for engine in engines:
                await engine.dispose()


async def test_a_replayed_identifier_is_refused_on_another_replica(
    two_replicas: tuple[ReplayCache, ReplayCache],
) -> None:
    first, second = two_replicas
    jti, expires = secrets.token_urlsafe(), now() + 60
    assert await first.first_use("dpop", jti, expires)
    assert not await second.first_use("dpop", jti, expires)
    assert not await first.first_use("dpop", jti, expires)


async def test_concurrent_presentations_have_exactly_one_winner(
    two_replicas: tuple[ReplayCache, ReplayCache],
) -> None:
    first, second = two_replicas
    jti, expires = secrets.token_urlsafe(), now() + 60
    outcomes = await asyncio.gather(
        *(replica.first_use("assertion", jti, expires) for replica in [first, second] * 10)
    )
    assert sorted(outcomes) == [False] * 19 + [True]


async def test_namespaces_do_not_collide(two_replicas: tuple[ReplayCache, ReplayCache]) -> None:
    first, _ = two_replicas
    jti, expires = secrets.token_urlsafe(), now() + 60
    assert await first.first_use("dpop", jti, expires)
    assert await first.first_use("client_assertion", jti, expires)


async def test_an_identifier_of_any_length_and_content_is_accepted_once(
    two_replicas: tuple[ReplayCache, ReplayCache],
) -> None:
    first, second = two_replicas
    hostile = "\x00" + "é" * 10_000 + secrets.token_hex(4)
    assert await first.first_use("dpop", hostile, now() + 60)
    assert not await second.first_use("dpop", hostile, now() + 60)


async def test_housekeeping_forgets_identifiers_once_expired(module_database: str) -> None:
    engine = create_engine(module_database)
    try:
        cache = DatabaseReplayCache(engine)
        expired, live = secrets.token_urlsafe(), secrets.token_urlsafe()
        assert await cache.first_use("dpop", expired, now() - 1)
        assert await cache.first_use("dpop", live, now() + 60)
        deleted = await prune(engine, now())
        assert deleted.get("used_identifiers", 0) >= 1
        async with create_session_factory(engine)() as session:
            remaining = (await session.scalars(select(UsedIdentifier.key))).all()
        assert len(remaining) >= 1
        assert await cache.first_use("dpop", expired, now() + 60)  # forgotten: its credential had expired
        assert not await cache.first_use("dpop", live, now() + 60)
    finally:
        await engine.dispose()
