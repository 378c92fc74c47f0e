"""Issue 14: scopes people can read (findings 6), and one server reachable under its /sse URL (finding 3).

Reproduced first: the consent page said "notes:read — access granted by this scope"; a client that
discovered a server through its /sse endpoint (RFC 9728 metadata whose resource is …/sse) got
invalid_target, so the legacy transport was unreachable for OAuth clients.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Page

from ..conftest import ISSUER, serve_in_process
from ..flow import (
    approve_and_sign_in,
    approved_client,
    assert_error_redirect,
    browser_for,
    new_request,
    redeem,
    refresh,
    register,
    token_claims,
)

NOTES = "http://127.0.0.1:9201/mcp"
NOTES_SSE = "http://127.0.0.1:9201/sse"
NOTES_RESOURCE = {
    "resource": NOTES,
    "scopes": ["mcp:tools", "notes:read", "notes:write"],
    "default_scopes": ["notes:read"],
    "name": "Notes",
    "scope_descriptions": {"notes:read": "read your notes", "notes:write": "change & delete <your> notes"},
    "aliases": [NOTES_SSE],
}


@pytest.fixture
async def client(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings(auth_resources=[NOTES_RESOURCE]))) as served:
        yield served


async def test_consent_page_shows_the_resources_own_words_and_built_in_ones(
    client: httpx.AsyncClient,
) -> None:
    registered = await register(client)
    request = new_request(registered["client_id"], resource=NOTES, scope="mcp:tools notes:read notes:write")
    page = await browser_for(client).open(request.url())
    assert isinstance(page, Page)
    assert "<code>notes:read</code> — read your notes" in page.text
    assert "<code>notes:write</code> — change &amp; delete &lt;your&gt; notes" in page.text  # escaped
    assert "<code>mcp:tools</code> — use this MCP server&#39;s tools" in page.text  # built-in text kept
    assert "access granted by this scope" not in page.text


async def test_connected_apps_page_shows_scope_descriptions(client: httpx.AsyncClient) -> None:
    registered = await register(client, client_name="Notes app")
    request = new_request(registered["client_id"], resource=NOTES, scope="notes:read")
    browser = browser_for(client)
    answer = await approve_and_sign_in(browser, request.url(), f"reader-{secrets.token_hex(3)}")
    assert (await redeem(client, request, answer["code"])).status_code == 200
    page = await browser.open(f"{ISSUER}/account/apps")
    assert isinstance(page, Page)
    assert '<code class="scope">notes:read</code>' in page.text
    assert "read your notes" in page.text


async def test_the_sse_alias_gets_the_same_consent_and_a_token_for_the_resource(
    client: httpx.AsyncClient,
) -> None:
    """A client that found the server at /sse names …/sse everywhere (RFC 8707); the token is for …/mcp."""
    registered = await register(client)
    request = new_request(registered["client_id"], resource=NOTES_SSE, scope="notes:read offline_access")
    page = await browser_for(client).open(request.url())
    assert isinstance(page, Page)
    assert f"<code>{NOTES}</code>" in page.text  # the consent is for the server, under its one name
    answer = await approve_and_sign_in(browser_for(client), request.url(), f"sse-{secrets.token_hex(3)}")
    tokens = await redeem(client, request, answer["code"], resource=NOTES_SSE)
    assert tokens.status_code == 200, tokens.text
    claims = await token_claims(client, tokens.json()["access_token"], audience=NOTES)
    assert claims["aud"] == NOTES
    refreshed = await refresh(client, registered, tokens.json()["refresh_token"], resource=NOTES_SSE)
    assert refreshed.status_code == 200, refreshed.text


async def test_an_alias_never_widens_the_audience(client: httpx.AsyncClient) -> None:
    registered = await approved_client(client, resource=NOTES)
    request = new_request(
        registered["client_id"], resource="http://127.0.0.1:9201/sse/other", scope="notes:read"
    )
    response = await client.get(request.url())
    assert_error_redirect(response, request.redirect_uri, "invalid_target", request.state)
