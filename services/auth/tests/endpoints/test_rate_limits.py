"""Rate limits on /register, /authorize and /token: 429, Retry-After and OAuth JSON; then recovery.

Who is counted (an address before authentication, a client after it), one budget for replicas sharing
Redis, and Redis going away: the limits switch off, say so once and come back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.web.rate_limits import FailOpenStore, rate_limit_store
from mcp_testing.redis_server import RedisServer

from ..conftest import ISSUER, RESOURCE_A, serve_in_process
from ..flow import CALLBACK
from ..operator_clients import machine_client

UP = "mcp_auth_rate_limit_storage_up"
SKIPPED = "mcp_auth_rate_limit_checks_skipped_total"


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["cache-control"] == "no-store"


async def test_registration_spam_from_one_address_is_limited_then_recovers(
    make_settings: Callable[..., AuthSettings],
) -> None:
    settings = make_settings(auth_rate_limits=True, auth_rate_limit_register="3/second")
    body = {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    async with serve_in_process(create_app(settings)) as client:
        statuses = [(await client.post("/register", json=body)).status_code for _ in range(3)]
        assert statuses == [201, 201, 201]
        limited = await client.post("/register", json=body)
        assert_limited(limited)
        await asyncio.sleep(int(limited.headers["retry-after"]))  # as a well-behaved client would
        assert (await client.post("/register", json=body)).status_code == 201


async def test_token_guessing_for_one_client_is_limited(make_settings: Callable[..., AuthSettings]) -> None:
    settings = make_settings(auth_rate_limits=True, auth_rate_limit_token="5/minute")
    async with serve_in_process(create_app(settings)) as client:
        form = {"grant_type": "client_credentials", "client_id": "guessed", "client_secret": "wrong"}
        statuses = [(await client.post("/token", data=form)).status_code for _ in range(5)]
        assert statuses == [401] * 5
        assert_limited(await client.post("/token", data=form))


async def test_authorize_is_limited_per_address(make_settings: Callable[..., AuthSettings]) -> None:
    settings = make_settings(auth_rate_limits=True, auth_rate_limit_authorize="2/minute")
    async with serve_in_process(create_app(settings)) as client:
        for _ in range(2):
            assert (await client.get("/authorize", params={"client_id": "x"})).status_code == 400
        assert_limited(await client.get("/authorize", params={"client_id": "y"}))


async def test_limits_are_off_by_default_on_a_loopback_issuer(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_rate_limit_token="1/hour"))) as client:
        form = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
        assert [(await client.post("/token", data=form)).status_code for _ in range(3)] == [401] * 3


def peer(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A connection to a started app that the app sees coming from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False)


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "resource": RESOURCE_A}


async def test_an_authenticated_client_spends_its_own_budget_wherever_it_calls_from(
    make_settings: Callable[..., AuthSettings],
) -> None:
    settings = make_settings(auth_rate_limits=True, auth_rate_limit_token="3/minute")
    async with serve_in_process(create_app(settings)) as client:
        client_id, secret = await machine_client(client, [RESOURCE_A], ["mcp:tools"])
        app = client._transport.app  # type: ignore[attr-defined]
        for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            async with peer(app, address) as job:
                answer = await job.post("/token", data=CLIENT_CREDENTIALS, auth=(client_id, secret))
                assert answer.status_code == 200, answer.text
        async with peer(app, "198.51.100.4") as job:
            assert_limited(await job.post("/token", data=CLIENT_CREDENTIALS, auth=(client_id, secret)))
            # Someone without the secret learns nothing of the client's budget: the answer is about them.
            guess = await job.post("/token", data=CLIENT_CREDENTIALS, auth=(client_id, "wrong"))
            assert guess.status_code == 401


async def test_an_ipv6_address_counts_by_its_64(make_settings: Callable[..., AuthSettings]) -> None:
    settings = make_settings(auth_rate_limits=True, auth_rate_limit_authorize="2/minute")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for address in ("2001:db8::1", "2001:db8::ffff:2"):
            async with peer(app, address) as browser:
                assert (await browser.get("/authorize", params={"client_id": "x"})).status_code == 400
        async with peer(app, "2001:db8::3") as same_block:
            assert_limited(await same_block.get("/authorize", params={"client_id": "x"}))
        async with peer(app, "2001:db8:0:1::1") as next_block:
            assert (await next_block.get("/authorize", params={"client_id": "x"})).status_code == 400


async def test_replicas_sharing_redis_draw_from_one_budget(
    make_settings: Callable[..., AuthSettings],
) -> None:
    limits = {"auth_rate_limits": True, "auth_rate_limit_token": "4/minute"}
    with RedisServer() as redis:
        settings = make_settings(**limits, auth_redis_url=redis.url)
        first, second = create_app(settings), create_app(settings)
        async with first.router.lifespan_context(first), second.router.lifespan_context(second):
            statuses = []
            for turn in range(8):
                async with peer(first if turn % 2 == 0 else second, "198.51.100.9") as guesser:
                    form = {**CLIENT_CREDENTIALS, "client_id": "guessed", "client_secret": "wrong"}
                    statuses.append((await guesser.post("/token", data=form)).status_code)
    assert statuses == [401] * 4 + [429] * 4  # not 4 per replica


async def test_an_unreachable_redis_turns_rate_limiting_off_says_so_once_and_comes_back(
    make_settings: Callable[..., AuthSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_auth_server.web.rate_limits")
    with RedisServer() as redis:
        settings = make_settings(
            auth_rate_limits=True, auth_rate_limit_authorize="2/minute", auth_redis_url=redis.url
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app), peer(app, "198.51.100.20") as browser:

            async def junk() -> int:
                return (await browser.get("/authorize", params={"client_id": "x"})).status_code

            assert [await junk() for _ in range(3)] == [400, 400, 429]  # limited while Redis answers
            redis.stop()
            skipped, refused = sample(SKIPPED), sample("mcp_auth_shared_state_unavailable_total")
            assert [await junk() for _ in range(5)] == [400] * 5  # served, unlimited: never a 503
            assert sample(UP) == 0
            assert sample(SKIPPED) == skipped + 5
            assert sample("mcp_auth_shared_state_unavailable_total") == refused
            off = [r for r in caplog.records if "rate limits are OFF" in r.getMessage()]
            assert len(off) == 1, "one line for the outage, not one per request"
            assert "AUTH_REDIS_URL" in off[0].getMessage()

            redis.start()  # the same port, empty: every budget starts again
            deadline = asyncio.get_running_loop().time() + 10
            while sample(UP) == 0 and asyncio.get_running_loop().time() < deadline:
                await junk()
                await asyncio.sleep(0.2)
            assert sample(UP) == 1
            assert [r.getMessage() for r in caplog.records].count(
                "rate limits are on again: their store (AUTH_REDIS_URL) answers"
            ) == 1
            statuses = [await junk() for _ in range(3)]
            assert 429 in statuses  # counted again


async def test_a_full_redis_turns_rate_limiting_off_rather_than_refusing(
    make_settings: Callable[..., AuthSettings],
) -> None:
    """`noeviction` (deploy/): a full Redis refuses writes; the limits then step aside like an outage."""
    with RedisServer() as redis:
        settings = make_settings(
            auth_rate_limits=True, auth_rate_limit_authorize="2/minute", auth_redis_url=redis.url
        )
        filler = Redis.from_url(redis.url)
        await filler.set("ballast", b"x" * 2_000_000)
        await filler.config_set("maxmemory-policy", "noeviction")
        await filler.config_set("maxmemory", "1mb")  # already over: every write is refused from now on
        await filler.aclose()
        app = create_app(settings)
        async with app.router.lifespan_context(app), peer(app, "198.51.100.30") as browser:
            statuses = [
                (await browser.get("/authorize", params={"client_id": "x"})).status_code for _ in range(4)
            ]
            assert statuses == [400] * 4
            assert sample(UP) == 0


async def test_many_requests_in_flight_do_not_turn_rate_limiting_off(
    make_settings: Callable[..., AuthSettings],
) -> None:
    """The attack: a sender keeps more checks in flight on one replica than its Redis pool has connections
    (a hundred by default in redis-py), hoping the pool's refusal passes for an outage and the limits step
    aside. The checks wait for a connection instead: the sender gets its rate and no more."""
    with RedisServer() as redis:
        store = rate_limit_store(make_settings(auth_rate_limits=True, auth_redis_url=redis.url))
        try:
            item = RateLimitItemPerMinute(100)  # under 200 a minute: counted one request at a time
            waits = await asyncio.gather(*(store.hit(item, "token", "address", "flood") for _ in range(400)))
        finally:
            await store.aclose()
    assert sum(wait is None for wait in waits) == 100
    assert sample(UP) == 1


class SlowStorage(MemoryStorage):
    """Counting that takes 20 ms a call, as a Redis under load might."""

    async def acquire_sliding_window_entry(self, *args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(0.02)
        return await super().acquire_sliding_window_entry(*args, **kwargs)

    async def get_sliding_window(self, *args: Any, **kwargs: Any) -> tuple[int, float, int, float]:
        await asyncio.sleep(0.02)
        return await super().get_sliding_window(*args, **kwargs)


async def test_checks_queued_longer_than_the_store_timeout_are_refused_not_let_through() -> None:
    """The attack: keep so many checks queued for the store's connections that some wait past the 0.5 s
    timeout, hoping that wait passes for an outage and the queued requests are served unlimited (and
    everyone else's with them). A check that waited too long is refused (429, retry in a second); the
    store is not taken for down."""
    redis = Redis.from_url("redis://127.0.0.1:1?max_connections=4")  # only its pool's size is read
    store = FailOpenStore(SlowStorage(), redis)
    try:
        item = RateLimitItemPerMinute(10)
        waits = await asyncio.gather(*(store.hit(item, "token", "address", "flood") for _ in range(400)))
    finally:
        await store.aclose()
    assert sum(wait is None for wait in waits) == 10
    assert all(wait is None or wait >= 1 for wait in waits)
    assert sample(UP) == 1
