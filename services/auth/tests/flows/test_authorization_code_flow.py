"""The whole authorization-code flow in one process, with the dev upstream, and its tokens."""

from __future__ import annotations

import httpx
import jwt

from mcp_testing.browser import Arrival, Page

from ..conftest import ISSUER, RESOURCE_A
from ..flow import (
    CLAUDE_CALLBACK,
    approve_and_sign_in,
    browser_for,
    new_request,
    redeem,
    register,
    token_claims,
)


async def test_register_consent_sign_in_code_token(auth_client: httpx.AsyncClient) -> None:
    client = await register(auth_client)
    request = new_request(client["client_id"])
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "alice")
    assert answer["state"] == request.state
    assert answer["iss"] == ISSUER  # RFC 9207

    response = await redeem(auth_client, request, answer["code"], resource=RESOURCE_A)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp:tools offline_access"
    assert len(body["refresh_token"]) >= 43

    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    claims = await token_claims(auth_client, body["access_token"])
    assert claims["aud"] == RESOURCE_A
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "mcp:tools offline_access"
    assert claims["preferred_username"] == "alice"
    assert claims["exp"] - claims["iat"] == 900
    assert {"sub", "jti", "auth_time"} <= claims.keys()


async def test_returning_user_with_remembered_consent_gets_a_code_without_any_page(
    auth_client: httpx.AsyncClient,
) -> None:
    # An https redirect URI matched exactly assures the client's identity (RFC 8252 §8.6).
    client = await register(auth_client, redirect_uris=[CLAUDE_CALLBACK])
    browser = browser_for(auth_client, CLAUDE_CALLBACK)
    await approve_and_sign_in(
        browser, new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK).url(), "bob"
    )

    second = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
    arrival = await browser.open(second.url())
    assert isinstance(arrival, Arrival), "expected a direct redirect with a code, got a page"
    answer = dict(httpx.URL(arrival.url).params)
    assert answer["state"] == second.state
    assert (await redeem(auth_client, second, answer["code"])).status_code == 200


async def test_prompt_consent_shows_the_page_again(auth_client: httpx.AsyncClient) -> None:
    client = await register(auth_client)
    browser = browser_for(auth_client)
    await approve_and_sign_in(browser, new_request(client["client_id"], scope="mcp:tools").url(), "carol")
    page = await browser.open(new_request(client["client_id"], scope="mcp:tools").url(prompt="consent"))
    assert isinstance(page, Page)
    assert page.status_code == 200
    assert 'name="decision" value="approve"' in page.text


async def test_prompt_consent_shows_the_page_even_when_offline_access_was_consented(
    auth_client: httpx.AsyncClient,
) -> None:
    # MCP clients (SEP-2207) send prompt=consent whenever they ask for offline_access; the page says
    # they were approved before, and one click answers.
    client = await register(auth_client, redirect_uris=[CLAUDE_CALLBACK])
    browser = browser_for(auth_client, CLAUDE_CALLBACK)
    request = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
    await approve_and_sign_in(browser, request.url(), "erin")
    again = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
    page = await browser.open(again.url(prompt="consent"))
    assert isinstance(page, Page)
    assert "approved this application before" in page.text
    arrival = await browser.submit(page, {"decision": "approve"})
    assert isinstance(arrival, Arrival)
    assert "code=" in arrival.url


async def test_signed_in_user_approving_a_new_client_skips_the_upstream(
    auth_client: httpx.AsyncClient,
) -> None:
    browser = browser_for(auth_client)
    first = await register(auth_client)
    await approve_and_sign_in(browser, new_request(first["client_id"]).url(), "dave")
    second = await register(auth_client, client_name="Another client")
    page = await browser.open(new_request(second["client_id"]).url())
    assert isinstance(page, Page)
    assert "Another client" in page.text
    arrival = await browser.submit(page, {"decision": "approve"})
    assert isinstance(arrival, Arrival)
    assert "code=" in arrival.url
