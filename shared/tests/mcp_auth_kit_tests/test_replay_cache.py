"""Single-use identifiers: once in memory, once across processes through Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from mcp_auth_kit.replay_cache import MemoryReplayCache, RedisReplayCache, ReplayCacheUnavailable


async def test_an_identifier_is_accepted_once_per_namespace() -> None:
    cache = MemoryReplayCache()
    expires_at = int(time.time()) + 60
    assert await cache.first_use("a", "jti-1", expires_at)
    assert not await cache.first_use("a", "jti-1", expires_at)
    assert await cache.first_use("b", "jti-1", expires_at)


async def test_expired_identifiers_are_forgotten() -> None:
    clock = [1000.0]
    cache = MemoryReplayCache(now=lambda: clock[0])
    assert await cache.first_use("a", "jti", 1060)
    clock[0] = 1061
    assert await cache.first_use("a", "other", 1120)
    assert len(cache) == 1
    assert await cache.first_use("a", "jti", 1120)  # after its credential would be refused anyway


async def test_a_full_cache_refuses_instead_of_forgetting_live_identifiers() -> None:
    cache = MemoryReplayCache(max_entries=2)
    expires_at = int(time.time()) + 60
    assert await cache.first_use("a", "1", expires_at)
    assert await cache.first_use("a", "2", expires_at)
    assert not await cache.first_use("a", "3", expires_at)
    assert not await cache.first_use("a", "1", expires_at)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_remembers_across_clients_until_expiry(redis: Redis) -> None:
    prefix = f"kit-test:{uuid.uuid4().hex}:"
    first, second = RedisReplayCache(redis, prefix), RedisReplayCache(redis, prefix)
    expires_at = int(time.time()) + 30
    assert await first.first_use("dpop", "jti", expires_at)
    assert not await second.first_use("dpop", "jti", expires_at)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    assert len(keys) == 1
    assert b"jti" not in keys[0]  # only the identifier's hash is stored
    ttl = await redis.ttl(keys[0])
    assert 25 <= ttl <= 31
    await redis.delete(*keys)


async def test_more_proofs_in_flight_than_redis_connections_are_checked_not_refused(redis: Redis) -> None:
    """The attack: keep more checks in flight than the client's connection pool holds (100). redis-py
    refuses the 101st at once (MaxConnectionsError, a RedisError), which read as an outage and answered
    genuine requests 503; the checks wait for a connection instead."""
    cache = RedisReplayCache(redis, f"kit-test:{uuid.uuid4().hex}:")
    expires_at = int(time.time()) + 30
    pool = redis.connection_pool.max_connections
    first = await asyncio.gather(*(cache.first_use("dpop", f"jti-{n}", expires_at) for n in range(4 * pool)))
    assert first == [True] * (4 * pool)
    again = await asyncio.gather(*(cache.first_use("dpop", f"jti-{n}", expires_at) for n in range(4 * pool)))
    assert again == [False] * (4 * pool)


async def test_a_redis_that_never_answers_refuses_checks_in_bounded_time() -> None:
    """A Redis that accepts connections and never answers (hung, or a black hole in front of it): the
    checks holding the pool's connections fail at the socket timeout, and the ones queued behind them
    must not wait in line one timeout after another (ever longer, with ever more requests held in memory):
    they are refused (503) after a bounded wait for a connection."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", max_connections=2, socket_timeout=2)
    cache = RedisReplayCache(client, "kit-test:")
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(cache.first_use("dpop", f"jti-{n}", int(time.time()) + 30) for n in range(6)),
            return_exceptions=True,
        )
    finally:
        await client.aclose()
        server.close()
    assert all(isinstance(outcome, ReplayCacheUnavailable) for outcome in outcomes)
    assert time.monotonic() - started < 3.0  # queued one timeout after another: 6 s
