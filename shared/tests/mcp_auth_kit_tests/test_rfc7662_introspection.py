"""Introspection mode: asked after the local check, cached briefly (never past `exp`), failing closed.

An introspection stand-in plays the auth service's /introspect; the real auth service is exercised
in services/auth/tests/e2e/test_introspection_mode.py.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_auth_kit import IntrospectingVerifier, Introspection, IntrospectionUnavailable, InvalidToken

from .conftest import LEGACY_HEADERS, IssuerStandIn, Mint, resource_url, rpc, serve, serve_protected

SECRET = "s3cret:with/odd chars"


@dataclass
class Introspector:
    """/introspect as the auth service answers it, with switches for the failures that matter."""

    url: str = ""
    revoked: set[str] = field(default_factory=set)
    calls: list[tuple[dict[str, str], str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def app(self) -> Starlette:
        async def introspect(request: Request) -> Response:
            form = {key: str(value) for key, value in (await request.form()).items()}
            self.calls.append((form, request.headers.get("authorization", "")))
            await asyncio.sleep(self.delay)
            if self.status != 200:
                return JSONResponse({"error": "invalid_client"}, status_code=self.status)
            return JSONResponse({"active": form["token"] not in self.revoked})

        return Starlette(routes=[Route("/introspect", introspect, methods=["POST"])])


@pytest_asyncio.fixture
async def introspector() -> AsyncIterator[Introspector]:
    standin = Introspector()
    async with serve(standin.app()) as url:
        standin.url = url
        yield standin


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def verifier(issuer: IssuerStandIn, introspector: Introspector, **options: Any) -> IntrospectingVerifier:
    return IntrospectingVerifier(
        issuer=issuer.url,
        resource_url=resource_url(),
        client_id="mcp-server",
        client_secret=SECRET,
        introspection_endpoint=f"{introspector.url}/introspect",
        **options,
    )


async def test_asks_with_its_own_credentials_and_caches_the_answer(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint
) -> None:
    checker = verifier(issuer, introspector)
    token = mint()
    try:
        for _ in range(3):
            assert (await checker.verify(token)).subject == "user-1"
    finally:
        await checker.aclose()
    [(form, authorization)] = introspector.calls
    assert form == {"token": token, "token_type_hint": "access_token"}
    # RFC 6749 §2.3.1: both parts form-urlencoded, then HTTP Basic.
    assert base64.b64decode(authorization.removeprefix("Basic ")) == b"mcp-server:s3cret%3Awith%2Fodd+chars"


async def test_a_revoked_token_is_refused_once_the_cached_answer_expires(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint
) -> None:
    clock = Clock()
    checker = verifier(issuer, introspector, cache_ttl=10, now=clock)
    token = mint()
    try:
        await checker.verify(token)
        introspector.revoked.add(token)
        clock.now += 9
        await checker.verify(token)  # still within the cache TTL
        clock.now += 2
        with pytest.raises(InvalidToken, match="inactive"):
            await checker.verify(token)
        assert await checker.verify_token(token) is None  # the SDK protocol: None, so 401
    finally:
        await checker.aclose()
    assert len(introspector.calls) == 2


async def test_an_answer_is_never_trusted_past_the_tokens_expiry(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint
) -> None:
    clock = Clock()
    checker = verifier(issuer, introspector, cache_ttl=60, now=clock)
    token = mint(exp=int(clock.now) + 5)
    try:
        await checker.verify(token)
        clock.now += 6  # past exp, within the local check's leeway
        await checker.verify(token)
    finally:
        await checker.aclose()
    assert len(introspector.calls) == 2


async def test_concurrent_requests_share_one_introspection(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint
) -> None:
    introspector.delay = 0.2
    checker = verifier(issuer, introspector)
    token = mint()
    try:
        results = await asyncio.gather(*(checker.verify(token) for _ in range(10)))
    finally:
        await checker.aclose()
    assert {result.subject for result in results} == {"user-1"}
    assert len(introspector.calls) == 1


async def test_tokens_failing_the_local_check_cost_no_call(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint
) -> None:
    checker = verifier(issuer, introspector)
    try:
        for token in (mint(audience="http://127.0.0.1:1/other"), mint(exp=int(time.time()) - 600)):
            with pytest.raises(InvalidToken):
                await checker.verify(token)
    finally:
        await checker.aclose()
    assert introspector.calls == []


@pytest.mark.parametrize("status", [401, 500])
async def test_an_auth_service_that_cannot_answer_fails_closed(
    issuer: IssuerStandIn, introspector: Introspector, mint: Mint, status: int
) -> None:
    introspector.status = status
    checker = verifier(issuer, introspector)
    token = mint()
    try:
        for _ in range(2):  # failures are not cached: the next request asks again
            with pytest.raises(IntrospectionUnavailable):
                await checker.verify_token(token)
    finally:
        await checker.aclose()
    assert len(introspector.calls) == 2


async def test_an_unreachable_auth_service_fails_closed(issuer: IssuerStandIn, mint: Mint) -> None:
    checker = verifier(issuer, Introspector(url="http://127.0.0.1:9"))  # nothing listens on port 9
    try:
        with pytest.raises(IntrospectionUnavailable):
            await checker.verify(mint())
    finally:
        await checker.aclose()


async def test_the_guard_answers_503_when_the_token_cannot_be_checked(
    issuer: IssuerStandIn, mint: Mint
) -> None:
    # The stand-in's metadata has no introspection_endpoint: discovery fails, so every check does.
    options = {"introspection": Introspection("mcp-server", SECRET)}
    async with serve_protected(issuer.url, **options) as served, httpx.AsyncClient() as http:
        token = mint(audience=served.resource_url)
        response = await http.post(
            served.resource_url,
            json=rpc("tools/list"),
            headers={**LEGACY_HEADERS, "Authorization": f"Bearer {token}"},
        )
        unauthenticated = await http.post(served.resource_url, json=rpc("tools/list"), headers=LEGACY_HEADERS)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in response.headers
    assert unauthenticated.status_code == 401  # no token: the usual challenge, nothing asked
    assert served.notes.executed == []


def test_cache_ttl_is_bounded(issuer: IssuerStandIn) -> None:
    for ttl in (0, 301):
        with pytest.raises(ValueError, match="cache_ttl"):
            IntrospectingVerifier(
                issuer=issuer.url,
                resource_url=resource_url(),
                client_id="c",
                client_secret="s",
                cache_ttl=ttl,
            )
