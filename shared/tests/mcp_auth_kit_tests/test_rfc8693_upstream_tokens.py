"""The upstream-token client speaks RFC 8693 exactly, caches until near expiry, and never leaks a token."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from mcp_auth_kit import UpstreamTokenClient, UpstreamTokenError

from .conftest import IssuerStandIn

SECRET = "s&cret=with:odd chars"
GITHUB_TOKEN = "gho_upstream_secret_value"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def upstream(issuer: IssuerStandIn, clock: Clock) -> AsyncIterator[UpstreamTokenClient]:
    issuer.exchange_answer = (
        200,
        {
            "access_token": GITHUB_TOKEN,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3600,
        },
    )
    client = UpstreamTokenClient(issuer=issuer.url, client_id="mcp:tools-1", client_secret=SECRET, now=clock)
    yield client
    await client.aclose()


def user_token(clock: Clock, token: str = "user-access-token", ttl: int = 600) -> AccessToken:
    return AccessToken(token=token, client_id="c", scopes=["mcp:tools"], expires_at=int(clock.now) + ttl)


async def test_exchange_request_is_rfc8693_with_basic_client_auth(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock
) -> None:
    assert await upstream.token_for("github", user_token(clock)) == GITHUB_TOKEN
    [(form, authorization)] = issuer.exchange_requests
    assert form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "user-access-token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "github",
    }
    # RFC 6749 §2.3.1: both parts form-urlencoded before base64.
    expected = base64.b64encode(b"mcp%3Atools-1:s%26cret%3Dwith%3Aodd+chars").decode()
    assert authorization == f"Basic {expected}"


async def test_upstream_token_is_cached_until_near_expiry(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock
) -> None:
    subject = user_token(clock, ttl=7200)
    await upstream.token_for("github", subject)
    clock.now += 3600 - 61
    await upstream.token_for("github", subject)
    assert len(issuer.exchange_requests) == 1
    clock.now += 2  # inside the 60 s margin before expires_in runs out
    await upstream.token_for("github", subject)
    assert len(issuer.exchange_requests) == 2


async def test_without_expires_in_the_subject_token_bounds_the_cache(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock
) -> None:
    issuer.exchange_answer = (200, {"access_token": GITHUB_TOKEN, "token_type": "Bearer"})
    subject = user_token(clock, ttl=300)
    await upstream.token_for("github", subject)
    clock.now += 239
    await upstream.token_for("github", subject)
    assert len(issuer.exchange_requests) == 1
    clock.now += 2
    await upstream.token_for("github", subject)
    assert len(issuer.exchange_requests) == 2


async def test_cache_is_per_user_and_audience(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock
) -> None:
    await upstream.token_for("github", user_token(clock, "alice"))
    await upstream.token_for("github", user_token(clock, "bob"))
    await upstream.token_for("google", user_token(clock, "alice"))
    await upstream.token_for("github", user_token(clock, "alice"))
    assert [form["subject_token"] for form, _ in issuer.exchange_requests] == ["alice", "bob", "alice"]


async def test_oauth_error_is_raised_and_not_cached(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock
) -> None:
    issuer.exchange_answer = (
        400,
        {"error": "invalid_grant", "error_description": "user has no GitHub grant"},
    )
    for _ in range(2):
        with pytest.raises(UpstreamTokenError) as raised:
            await upstream.token_for("github", user_token(clock))
        assert raised.value.error == "invalid_grant"
    assert len(issuer.exchange_requests) == 2


async def test_token_for_defaults_to_the_current_requests_token(
    upstream: UpstreamTokenClient, clock: Clock
) -> None:
    with pytest.raises(UpstreamTokenError, match="no authenticated user"):
        await upstream.token_for("github")
    context = auth_context_var.set(AuthenticatedUser(user_token(clock)))
    try:
        assert await upstream.token_for("github") == GITHUB_TOKEN
    finally:
        auth_context_var.reset(context)


async def test_unreachable_auth_service_is_temporarily_unavailable(clock: Clock) -> None:
    client = UpstreamTokenClient(issuer="http://127.0.0.1:1", client_id="c", client_secret=SECRET)
    with pytest.raises(UpstreamTokenError) as raised:
        await client.token_for("github", user_token(clock))
    assert raised.value.error == "temporarily_unavailable"
    await client.aclose()


async def test_no_token_or_secret_is_ever_logged_or_shown(
    upstream: UpstreamTokenClient, issuer: IssuerStandIn, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await upstream.token_for("github", user_token(clock))
    issuer.exchange_answer = (400, {"error": "invalid_grant"})
    with pytest.raises(UpstreamTokenError) as raised:
        await upstream.token_for("github", user_token(clock, "another-user-token"))
    shown = caplog.text + str(raised.value) + repr(upstream)
    basic_credentials = base64.b64encode(b"mcp%3Atools-1:s%26cret%3Dwith%3Aodd+chars").decode()
    for secret in (
        "user-access-token",
        "another-user-token",
        GITHUB_TOKEN,
        SECRET,
        "s%26cret",
        basic_credentials,
    ):
        assert secret not in shown
