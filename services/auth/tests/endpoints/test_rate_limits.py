"""Rate limits on /register, /authorize and /token: 429, Retry-After and OAuth JSON; then recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings

from ..conftest import serve_in_process
from ..flow import CALLBACK


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
