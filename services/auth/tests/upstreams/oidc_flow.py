"""The auth service with an OIDC upstream (generic or Google) on the stand-in, and flow steps on it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlalchemy import select, update

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import UpstreamIdentity
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.clients import create_client
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.oidc_standin import OidcStandIn
from mcp_testing.oidc_state import Client, SigningKey

from ..conftest import ISSUER, RESOURCE_A, serve_in_process
from ..flow import (
    AuthorizationRequest,
    Database,
    browser_for,
    execute,
    new_request,
    query,
    redeem,
    register,
)

CALLBACK = f"{ISSUER}/callback"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class OidcService:
    """The auth service with the `oidc` or `google` upstream, and its client at the stand-in."""

    client: httpx.AsyncClient
    app: FastAPI
    provider: OidcStandIn
    upstream_client: Client
    upstream: Literal["oidc", "google"]


@contextlib.asynccontextmanager
async def oidc_service(
    make_settings: Callable[..., AuthSettings],
    provider: OidcStandIn,
    upstream: Literal["oidc", "google"] = "oidc",
    **overrides: Any,
) -> AsyncIterator[OidcService]:
    upstream_client = provider.state.add_client(CALLBACK)
    prefix = "google" if upstream == "google" else "oidc"
    settings = make_settings(
        auth_upstream=upstream,
        **{
            f"{prefix}_issuer": provider.issuer,
            f"{prefix}_client_id": upstream_client.client_id,
            f"{prefix}_client_secret": upstream_client.client_secret,
        },
        **overrides,
    )
    app = create_app(settings)
    async with serve_in_process(app, real_hosts=(provider.issuer,)) as client:
        yield OidcService(client, app, provider, upstream_client, upstream)


@dataclass
class SignIn:
    registered: dict[str, Any]
    request: AuthorizationRequest
    outcome: Page | Arrival
    browser: Browser

    @property
    def answer(self) -> dict[str, str]:
        assert isinstance(self.outcome, Arrival), getattr(self.outcome, "text", self.outcome)
        return query(self.outcome.url)


async def sign_in(service: OidcService, login: str | None, browser: Browser | None = None) -> SignIn:
    """Register a client, open /authorize, approve, and (with `login`) be signed in at the provider.

    Each sign-in starts in a browser that is not signed in to the auth service yet.
    """
    service.client.cookies.clear()
    service.provider.state.auto_login = login
    registered = await register(service.client)
    # github:repos is resource A's upstream-token scope: these users' tools get their upstream token.
    request = new_request(registered["client_id"], scope="mcp:tools github:repos offline_access")
    browser = browser or browser_for(service.client)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page), consent
    assert consent.status_code == 200, consent.text
    return SignIn(registered, request, await browser.submit(consent, {"decision": "approve"}), browser)


async def tokens_after_sign_in(service: OidcService, login: str) -> dict[str, Any]:
    signed_in = await sign_in(service, login)
    response = await redeem(service.client, signed_in.request, signed_in.answer["code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["client"] = signed_in.registered
    return body


def assert_refused(outcome: Page | Arrival, client_error: str) -> dict[str, str]:
    """The browser is sent back to the client with `client_error`, `state` and `iss`, and no code
    (RFC 6749 §4.1.2.1, RFC 9207 §2): a client waiting on its callback hears at once."""
    assert isinstance(outcome, Arrival), outcome
    answer = query(outcome.url)
    assert (answer["error"], answer["iss"]) == (client_error, ISSUER), answer
    assert "state" in answer
    assert "code" not in answer
    return answer


# --- upstream tokens and token exchange ------------------------------------------------------------


async def resource_server(database: Database, resource: str = RESOURCE_A) -> tuple[str, str]:
    """A confidential client of an MCP server, allowed to exchange its users' tokens (RFC 8693)."""
    async with database() as session:
        client, secret = create_client(
            session,
            origin="resource_server",
            redirect_uris=[],
            token_endpoint_auth_method="client_secret_post",
            grant_types=[TOKEN_EXCHANGE],
            served_resource=resource,
        )
        await session.commit()
    assert secret is not None
    return client.client_id, secret


async def exchange(
    service: OidcService, server: tuple[str, str], access_token: str, audience: str | None = None
) -> httpx.Response:
    return await service.client.post(
        "/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "client_id": server[0],
            "client_secret": server[1],
            "subject_token": access_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience or service.upstream,
        },
    )


async def linked_identity(database: Database, subject: str) -> UpstreamIdentity:
    async with database() as session:
        row = await session.scalar(select(UpstreamIdentity).where(UpstreamIdentity.subject == subject))
    assert row is not None
    return row


async def expire_upstream_token(database: Database, subject: str) -> None:
    """Time travel: the stored upstream access token expired ten seconds ago."""
    await execute(
        database,
        update(UpstreamIdentity)
        .where(UpstreamIdentity.subject == subject)
        .values(access_token_expires_at=now() - 10),
    )


async def forget_upstream_check(database: Database, subject: str) -> None:
    """Time travel: the upstream was last asked about this user long ago, so a refresh asks again."""
    await execute(
        database,
        update(UpstreamIdentity).where(UpstreamIdentity.subject == subject).values(checked_at=1),
    )


# --- forged ID tokens ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none` (RFC 7518 §3.6)."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The classic key confusion: HMAC keyed with the provider's public key, which anyone can fetch."""
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def shifted(claims: dict[str, Any], seconds: int) -> dict[str, Any]:
    moment = int(time.time()) + seconds
    return {**claims, "iat": moment, "exp": moment + 300}
