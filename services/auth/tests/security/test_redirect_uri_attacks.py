"""Redirect URI manipulation at /authorize: codes must only ever travel to a registered address.

Covers OAuth 2.1 §4.1.1 and §7.5.3 (exact string matching), RFC 9700 §4.1 (insufficient redirect
URI validation) and §4.11.2 (no redirect before the URI is verified), RFC 6749 §4.1.2.1 (errors
about the client or redirect URI are shown to the user, never redirected) and RFC 8252 §7.3
(loopback redirects may use any port, nothing else may differ).
"""

from __future__ import annotations

import httpx
import pytest

from mcp_testing.browser import Arrival, Page

from ..flow import (
    CALLBACK,
    CLAUDE_CALLBACK,
    approve_and_sign_in,
    assert_error_page,
    browser_for,
    new_request,
    query,
    redeem,
    register,
)

EVIL = "evil.example"

HTTPS_VARIANTS = {
    "trailing_slash": CLAUDE_CALLBACK + "/",
    "path_case": "https://claude.ai/api/mcp/Auth_Callback",
    "host_case": "https://CLAUDE.AI/api/mcp/auth_callback",
    "scheme_case": "HTTPS://claude.ai/api/mcp/auth_callback",
    "added_query": CLAUDE_CALLBACK + "?next=https://evil.example/",
    "empty_query": CLAUDE_CALLBACK + "?",
    "fragment": CLAUDE_CALLBACK + "#evil",
    "userinfo": "https://claude.ai@evil.example/api/mcp/auth_callback",
    "userinfo_with_password": "https://claude.ai:443@evil.example/api/mcp/auth_callback",
    "backslash_userinfo": "https://evil.example\\@claude.ai/api/mcp/auth_callback",
    "subdomain": "https://evil.claude.ai/api/mcp/auth_callback",
    "suffix_domain": "https://claude.ai.evil.example/api/mcp/auth_callback",
    "trailing_dot_host": "https://claude.ai./api/mcp/auth_callback",
    "percent_encoded_path": "https://claude.ai/api/mcp/auth%5Fcallback",
    "percent_encoded_slash": "https://claude.ai/api%2Fmcp/auth_callback",
    "dot_segments": "https://claude.ai/api/mcp/../mcp/auth_callback",
    "single_dot_segment": "https://claude.ai/api/mcp/./auth_callback",
    "other_port": "https://claude.ai:8443/api/mcp/auth_callback",
    "explicit_default_port": "https://claude.ai:443/api/mcp/auth_callback",
    "other_path": "https://claude.ai/api/mcp/auth_callback/evil",
    "path_prefix": "https://claude.ai/api/mcp",
    "http_downgrade": "http://claude.ai/api/mcp/auth_callback",
    "other_host": "https://evil.example/api/mcp/auth_callback",
    "scheme_relative": "//evil.example/api/mcp/auth_callback",
    "whitespace": " " + CLAUDE_CALLBACK,
}

LOOPBACK_VARIANTS = {
    "other_path": "http://127.0.0.1:33418/callback/evil",
    "path_case": "http://127.0.0.1:33418/Callback",
    "trailing_slash": "http://127.0.0.1:33418/callback/",
    "dot_segments": "http://127.0.0.1:33418/x/../callback",
    "percent_encoded_path": "http://127.0.0.1:33418/%63allback",
    "added_query": "http://127.0.0.1:33418/callback?x=1",
    "fragment": "http://127.0.0.1:33418/callback#evil",
    "localhost_spelling": "http://localhost:33418/callback",
    "ipv6_spelling": "http://[::1]:33418/callback",
    "https_scheme": "https://127.0.0.1:33418/callback",
    "userinfo": "http://evil@127.0.0.1:33418/callback",
    "empty_userinfo": "http://@127.0.0.1:33418/callback",
    "host_with_evil_suffix": "http://127.0.0.1.evil.example:33418/callback",
    "evil_host_loopback_path": "http://evil.example:33418/callback",
    "malformed_port": "http://127.0.0.1:99999/callback",
}


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    registered = await register(auth_client, redirect_uris=[CLAUDE_CALLBACK, CALLBACK])
    return str(registered["client_id"])


def assert_not_sent_anywhere(response: httpx.Response) -> None:
    assert_error_page(response)
    assert EVIL not in response.text  # not even a link to the attacker's address


@pytest.mark.parametrize("redirect_uri", HTTPS_VARIANTS.values(), ids=HTTPS_VARIANTS.keys())
async def test_redirect_uri_variant_of_a_registered_https_uri_is_not_redirected_to(
    auth_client: httpx.AsyncClient, client_id: str, redirect_uri: str
) -> None:
    response = await auth_client.get(new_request(client_id, redirect_uri=redirect_uri).url())
    assert_not_sent_anywhere(response)


@pytest.mark.parametrize("redirect_uri", LOOPBACK_VARIANTS.values(), ids=LOOPBACK_VARIANTS.keys())
async def test_redirect_uri_variant_of_a_registered_loopback_uri_is_not_redirected_to(
    auth_client: httpx.AsyncClient, client_id: str, redirect_uri: str
) -> None:
    response = await auth_client.get(new_request(client_id, redirect_uri=redirect_uri).url())
    assert_not_sent_anywhere(response)


async def test_redirect_uri_with_userinfo_is_not_redirected_to_even_when_the_request_is_also_invalid(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # Every other error would be redirected; the unverified redirect URI must win (RFC 9700 §4.11.2).
    request = new_request(client_id, redirect_uri="https://claude.ai@evil.example/api/mcp/auth_callback")
    response = await auth_client.get(request.url(response_type="token", code_challenge=None, resource="x"))
    assert_not_sent_anywhere(response)


async def test_registered_https_redirect_uri_is_accepted_exactly(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # The control for the variants above: the exact registered string gets the consent page.
    response = await auth_client.get(new_request(client_id, redirect_uri=CLAUDE_CALLBACK).url())
    assert response.status_code == 200
    assert 'name="decision" value="approve"' in response.text


async def test_loopback_redirect_on_another_port_is_accepted_and_the_code_goes_to_that_port(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # RFC 8252 §7.3: native apps listen on whatever port is free.
    request = new_request(client_id, redirect_uri="http://127.0.0.1:34567/callback")
    browser = browser_for(auth_client, "http://127.0.0.1:34567/")
    answer = await approve_and_sign_in(browser, request.url(), "loopback-user")
    assert answer["state"] == request.state
    response = await redeem(auth_client, request, answer["code"])
    assert response.status_code == 200, response.text


async def test_code_for_one_loopback_port_is_not_redeemable_with_another_port(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id, redirect_uri="http://127.0.0.1:34567/callback")
    browser = browser_for(auth_client, "http://127.0.0.1:34567/")
    answer = await approve_and_sign_in(browser, request.url(), "port-switcher")
    response = await redeem(auth_client, request, answer["code"], redirect_uri=CALLBACK)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_client_id_is_shown_a_page_not_redirected(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get(
        new_request("no-such-client", redirect_uri="https://evil.example/callback").url()
    )
    assert_not_sent_anywhere(response)


async def test_missing_redirect_uri_is_shown_a_page_not_redirected(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.get(new_request(client_id).url(redirect_uri=None))
    assert_error_page(response)


async def test_code_goes_only_to_the_redirect_uri_of_the_request_with_registered_query_kept(
    auth_client: httpx.AsyncClient,
) -> None:
    # RFC 6749 §3.1.2: a registered query is kept; nothing can be appended to smuggle a second target.
    registered_uri = "https://claude.ai/api/mcp/auth_callback?tenant=1"
    client = await register(auth_client, redirect_uris=[registered_uri])
    request = new_request(client["client_id"], redirect_uri=registered_uri)
    browser = browser_for(auth_client)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page)
    after = await browser.submit(consent, {"decision": "approve"})
    assert isinstance(after, Page)  # the dev upstream's sign-in form
    arrival = await browser.submit(after, {"username": "query-keeper"})
    assert isinstance(arrival, Arrival)
    assert arrival.url.startswith("https://claude.ai/api/mcp/auth_callback?tenant=1&")
    assert query(arrival.url)["tenant"] == "1"
