"""The `mcp` SDK's own OAuth client, with a test browser standing in for the person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from mcp_testing.browser import Arrival, Browser, Page

REDIRECT_URI = "http://127.0.0.1:33419/oauth/callback"


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Person:
    """Approves consent pages (and records what they saw) in one browser with one cookie jar.

    With the `dev` upstream they also type `username` into its sign-in form.
    """

    def __init__(self, http: httpx.AsyncClient, username: str = "alice") -> None:
        self.browser = Browser(http, stop_at=[REDIRECT_URI])
        self.username = username
        self.pages_seen: list[str] = []
        self.arrivals: list[str] = []

    async def authorize(self, url: str) -> None:
        result = await self.browser.open(url)
        while isinstance(result, Page):
            assert result.status_code == 200, result.text
            if 'name="username"' in result.text:
                result = await self.browser.submit(result, {"username": self.username})
                continue
            self.pages_seen.append(result.text)
            assert 'value="approve"' in result.text, result.text
            result = await self.browser.submit(result, {"decision": "approve"})
        assert isinstance(result, Arrival)
        self.arrivals.append(result.url)

    async def answer(self) -> AuthorizationCodeResult:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.arrivals[-1]).query).items()}
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


def oauth_provider(
    server_url: str, person: Person, storage: MemoryStorage, client_metadata_url: str | None = None
) -> OAuthClientProvider:
    """The SDK's OAuth client for `server_url`: it discovers everything from the server's 401."""
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT_URI],
            client_name="SDK end-to-end client",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.authorize,
        callback_handler=person.answer,
        client_metadata_url=client_metadata_url,
    )


@asynccontextmanager
async def oauth_mcp_client(
    server_url: str, person: Person, storage: MemoryStorage, client_metadata_url: str | None = None
) -> AsyncIterator[Client]:
    provider = oauth_provider(server_url, person, storage, client_metadata_url)
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(server_url, http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def oauth_sse_client(server_url: str, person: Person, storage: MemoryStorage) -> AsyncIterator[Client]:
    """The SDK's legacy SSE client, authorizing through the same OAuth provider."""
    provider = oauth_provider(server_url, person, storage)
    async with Client(sse_client(server_url, auth=provider, timeout=30), mode="legacy") as client:
        yield client
