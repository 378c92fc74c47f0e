"""Helpers that walk the OAuth flow the way a client and a browser do."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import ColumnElement, Executable, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import AuditEvent, Base
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import OAuthApp

from .conftest import ISSUER, RESOURCE_A, serve_in_process

CALLBACK = "http://127.0.0.1:33418/callback"
CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback"
Database = async_sessionmaker[AsyncSession]
Row = TypeVar("Row", bound=Base)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def register(client: httpx.AsyncClient, **metadata: Any) -> dict[str, Any]:
    body = {
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "Test client",
        **metadata,
    }
    response = await client.post("/register", json=body)
    assert response.status_code == 201, response.text
    registered: dict[str, Any] = response.json()
    return registered


async def approved_client(
    client: httpx.AsyncClient, username: str = "approver", resource: str = RESOURCE_A, **metadata: Any
) -> dict[str, Any]:
    """A registered client that the user of the test's browser has approved (and is still signed in
    for): its errors at /authorize are redirected to it.

    A dynamically registered client this browser's person has not approved gets an error page with a link
    instead (RFC 9700 §4.11.2; tests/security/test_open_redirector_attacks.py).
    """
    registered = await register(client, **metadata)
    request = AuthorizationRequest(
        registered["client_id"], *pkce_pair(), state="approve-once", resource=resource, scope=None
    )
    if registered["redirect_uris"] != [CALLBACK]:
        request.redirect_uri = registered["redirect_uris"][0]
    assert "code" in await approve_and_sign_in(browser_for(client), request.url(), username)
    return registered


@dataclass
class AuthorizationRequest:
    client_id: str
    verifier: str
    challenge: str
    state: str
    redirect_uri: str = CALLBACK
    resource: str | None = RESOURCE_A
    scope: str | None = "mcp:tools offline_access"
    issuer: str = ISSUER

    def url(self, **overrides: str | None) -> str:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            "state": self.state,
            "resource": self.resource,
            "scope": self.scope,
        }
        params.update(overrides)
        return f"{self.issuer}/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}"


def new_request(client_id: str, **fields: Any) -> AuthorizationRequest:
    verifier, challenge = pkce_pair()
    fields.setdefault("state", secrets.token_urlsafe(8))
    return AuthorizationRequest(client_id, verifier, challenge, **fields)


def browser_for(client: httpx.AsyncClient, *also_stop_at: str) -> Browser:
    """A browser that stops at the usual client redirect URIs (and `also_stop_at`) without fetching them."""
    return Browser(
        client,
        stop_at=[
            CALLBACK.rsplit("/", 1)[0],
            "http://localhost:",
            "cursor://",
            "https://claude",
            *also_stop_at,
        ],
    )


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def approve_and_sign_in(browser: Browser, url: str, username: str = "alice") -> dict[str, str]:
    """Open /authorize, approve the consent page, sign in with the dev upstream; the client's answer."""
    consent = await browser.open(url)
    assert isinstance(consent, Page), consent
    assert consent.status_code == 200, consent.text
    after = await browser.submit(consent, {"decision": "approve"})
    if isinstance(after, Page):  # the dev upstream's sign-in form
        after = await browser.submit(after, {"username": username})
    assert isinstance(after, Arrival), getattr(after, "text", after)
    return query(after.url)


async def redeem(
    client: httpx.AsyncClient,
    request: AuthorizationRequest,
    code: str,
    auth: tuple[str, str] | None = None,
    **extra: str | None,
) -> httpx.Response:
    """Redeem `code`; `auth`: client_secret_basic credentials, for a client registered for them."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "client_id": request.client_id,
        **extra,
    }
    fields = {key: value for key, value in data.items() if value is not None}
    return await client.post("/token", data=fields, auth=auth or httpx.USE_CLIENT_DEFAULT)


async def token_claims(client: httpx.AsyncClient, token: str, audience: str = RESOURCE_A) -> dict[str, Any]:
    jwks = (await client.get("/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(key), algorithms=[key["alg"]], audience=audience, issuer=ISSUER
    )
    return claims


# --- Attack tests: one signed-in client with tokens, and what an attacker looks for in answers ----


@dataclass
class Tokens:
    """A registered client, the authorization request it made, and the token response it got."""

    client: dict[str, Any]
    request: AuthorizationRequest
    body: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.body["refresh_token"])


async def tokens_for(
    client: httpx.AsyncClient,
    username: str = "alice",
    *,
    browser: Browser | None = None,
    registration: dict[str, Any] | None = None,
    **request_fields: Any,
) -> Tokens:
    """Register a client, approve it as `username` with the dev upstream and redeem the code."""
    registered = await register(client, **(registration or {}))
    request = new_request(registered["client_id"], **request_fields)
    answer = await approve_and_sign_in(browser or browser_for(client), request.url(), username)
    response = await redeem(client, request, answer["code"], client_secret=registered.get("client_secret"))
    assert response.status_code == 200, response.text
    return Tokens(registered, request, response.json())


async def refresh(
    client: httpx.AsyncClient, registered: dict[str, Any], refresh_token: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": registered["client_id"],
    }
    if registered.get("client_secret"):
        data["client_secret"] = registered["client_secret"]
    return await client.post("/token", data={**data, **extra})


def assert_error_page(response: httpx.Response, status_code: int = 400) -> None:
    """An HTML page for the person, and no redirect anywhere (RFC 9700 §4.11.2, RFC 6749 §4.1.2.1)."""
    assert response.status_code == status_code, (response.status_code, response.headers, response.text)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_oauth_error(response: httpx.Response, error: str, status_code: int = 400) -> dict[str, Any]:
    """A token-endpoint style error: JSON `{"error", "error_description"}`, never cached."""
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    return body


def assert_error_redirect(
    response: httpx.Response, redirect_uri: str, error: str, state: str | None
) -> dict[str, str]:
    """An error sent back to the client's verified redirect URI with `state` and `iss` (RFC 9207 §2)."""
    assert response.status_code in (302, 303), (response.status_code, response.text)
    location = response.headers["location"]
    assert location.split("?", 1)[0] == redirect_uri.split("?", 1)[0], location
    params = parse_qs(urlsplit(location).query)
    assert params["iss"] == [ISSUER], params
    assert params["error"] == [error], params
    assert params.get("state") == ([state] if state is not None else None), params
    return {key: values[0] for key, values in params.items()}


async def all_rows(database: Database, model: type[Row], *where: ColumnElement[bool]) -> list[Row]:
    async with database() as session:
        return list((await session.scalars(select(model).where(*where))).all())


async def audit_events(database: Database, event: str, client_id: str | None = None) -> list[AuditEvent]:
    conditions = [AuditEvent.event == event]
    if client_id is not None:
        conditions.append(AuditEvent.client_id == client_id)
    return await all_rows(database, AuditEvent, *conditions)


async def execute(database: Database, statement: Executable) -> None:
    """Change stored state behind the app's back (time travel, deleted rows)."""
    async with database() as session:
        await session.execute(statement)
        await session.commit()


# --- The GitHub upstream, through the stand-in ---------------------------------------------------

GITHUB_CALLBACK = f"{ISSUER}/callback"


@dataclass
class GitHubService:
    """The auth service configured with the GitHub upstream, and the stand-in's OAuth app for it."""

    client: httpx.AsyncClient
    app: FastAPI
    github: GitHubStandIn
    oauth_app: OAuthApp


@contextlib.asynccontextmanager
async def github_service(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, **overrides: Any
) -> AsyncIterator[GitHubService]:
    oauth_app = github.state.add_app(GITHUB_CALLBACK)
    settings = make_settings(
        auth_upstream="github",
        github_client_id=oauth_app.client_id,
        github_client_secret=oauth_app.client_secret,
        github_url=github.base_url,
        github_api_url=github.api_url,
        **overrides,
    )
    app = create_app(settings)
    async with serve_in_process(app, real_hosts=(github.base_url,)) as client:
        yield GitHubService(client, app, github, oauth_app)


async def to_github_callback(service: GitHubService, browser: Browser, url: str, login: str) -> str:
    """Approve at /authorize and sign in at the stand-in as `login`; the /callback URL, not yet opened.

    Stopping there lets a test switch a GitHub failure on (or inspect the database) just before
    the auth service talks to GitHub about the code.
    """
    service.github.state.auto_login = login
    consent = await browser.open(url)
    assert isinstance(consent, Page), consent
    assert consent.status_code == 200, consent.text
    upstream = await service.client.post(
        consent.forms()[0].action, data={**consent.forms()[0].fields, "decision": "approve"}
    )
    assert upstream.status_code == 303, upstream.text
    at_github = await service.client.get(upstream.headers["location"])
    assert at_github.status_code == 302, at_github.text
    callback = at_github.headers["location"]
    assert callback.startswith(GITHUB_CALLBACK + "?"), callback
    return str(callback)


async def github_tokens(service: GitHubService, login: str, **registration: Any) -> Tokens:
    """Register a client, approve it and sign in with GitHub as `login` (a fresh browser), redeem."""
    service.client.cookies.clear()
    registered = await register(service.client, **registration)
    request = new_request(registered["client_id"])
    callback = await to_github_callback(service, browser_for(service.client), request.url(), login)
    arrival = await browser_for(service.client).open(callback)
    assert isinstance(arrival, Arrival), getattr(arrival, "text", arrival)
    response = await redeem(
        service.client, request, query(arrival.url)["code"], client_secret=registered.get("client_secret")
    )
    assert response.status_code == 200, response.text
    return Tokens(registered, request, response.json())
