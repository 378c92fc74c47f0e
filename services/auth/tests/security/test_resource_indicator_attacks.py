"""Audience injection and widening through `resource` and `scope`.

Covers RFC 8707 §2 (absolute URI, no fragment; unknown → invalid_target) and §2.2 (the token
request may not name another resource than the one authorized), RFC 6749 §3.3 and §6 (refresh
may only narrow scope: invalid_scope), RFC 9068 §3 (`aud` is the resource), and the MCP spec's
rule that tokens are audience-bound to exactly one MCP server.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings

from ..conftest import RESOURCE_A, RESOURCE_B, serve_in_process
from ..flow import (
    CALLBACK,
    approve_and_sign_in,
    approved_client,
    assert_error_redirect,
    assert_oauth_error,
    browser_for,
    new_request,
    redeem,
    refresh,
    token_claims,
    tokens_for,
)

BAD_RESOURCES = {
    "unknown": "https://evil.example/mcp",
    "relative": "/mcp",
    "no_scheme": "127.0.0.1:9101/mcp",
    "fragment": RESOURCE_A + "#fragment",
    "sibling_path": "http://127.0.0.1:9101/mcp-other",
    "trailing_slash": RESOURCE_A + "/",
    "sub_path": RESOURCE_A + "/admin",
    "path_case": "http://127.0.0.1:9101/MCP",
    "added_query": RESOURCE_A + "?x=1",
    "other_port": "http://127.0.0.1:9103/mcp",
    "userinfo": "http://evil@127.0.0.1:9101/mcp",
    "https_of_http": "https://127.0.0.1:9101/mcp",
    "urn": "urn:example:mcp",
    "empty": "",
}


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await approved_client(auth_client))["client_id"])


@pytest.mark.parametrize("resource", BAD_RESOURCES.values(), ids=BAD_RESOURCES.keys())
async def test_authorization_request_for_a_resource_that_is_not_registered_exactly_is_invalid_target(
    auth_client: httpx.AsyncClient, client_id: str, resource: str
) -> None:
    request = new_request(client_id, resource=resource)
    assert_error_redirect(await auth_client.get(request.url()), CALLBACK, "invalid_target", request.state)


async def test_authorization_request_for_two_resources_is_invalid_target(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    url = request.url() + "&resource=" + httpx.QueryParams({"r": RESOURCE_B})["r"]
    assert_error_redirect(await auth_client.get(url), CALLBACK, "invalid_target", request.state)


async def test_code_for_resource_a_redeemed_for_resource_b_is_invalid_target(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "widener")
    assert_oauth_error(
        await redeem(auth_client, request, answer["code"], resource=RESOURCE_B), "invalid_target"
    )
    for resource in ("https://evil.example/mcp", RESOURCE_A + "#x", "/mcp"):
        assert_oauth_error(
            await redeem(auth_client, request, answer["code"], resource=resource), "invalid_target"
        )


async def test_code_redeemed_for_both_resources_is_invalid_target(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "both")
    data = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "client_id": client_id,
        "resource": [RESOURCE_A, RESOURCE_B],
    }
    assert_oauth_error(await auth_client.post("/token", data=data), "invalid_target")


async def test_refresh_for_another_resource_is_invalid_target_and_leaves_the_token_usable(
    auth_client: httpx.AsyncClient,
) -> None:
    tokens = await tokens_for(auth_client, "refresh-widener")
    for resource in (RESOURCE_B, "https://evil.example/mcp", RESOURCE_A + "/"):
        response = await refresh(auth_client, tokens.client, tokens.refresh_token, resource=resource)
        assert_oauth_error(response, "invalid_target")
    # The refused attempts rotated nothing: the same refresh token still works once.
    assert (
        await refresh(auth_client, tokens.client, tokens.refresh_token, resource=RESOURCE_A)
    ).status_code == 200


@pytest.mark.parametrize(
    "scope", ["mcp:tools github:repos", "github:repos", "admin", "mcp:tools offline_access admin"]
)
async def test_scope_widening_at_refresh_is_invalid_scope(auth_client: httpx.AsyncClient, scope: str) -> None:
    tokens = await tokens_for(auth_client, "scope-widener")
    assert_oauth_error(
        await refresh(auth_client, tokens.client, tokens.refresh_token, scope=scope), "invalid_scope"
    )
    assert (await refresh(auth_client, tokens.client, tokens.refresh_token)).status_code == 200


async def test_scope_narrowing_at_refresh_narrows_only_that_access_token(
    auth_client: httpx.AsyncClient,
) -> None:
    tokens = await tokens_for(auth_client, "scope-narrower", scope="mcp:tools github:repos offline_access")
    narrowed = await refresh(auth_client, tokens.client, tokens.refresh_token, scope="mcp:tools")
    assert narrowed.status_code == 200, narrowed.text
    assert (await token_claims(auth_client, narrowed.json()["access_token"]))["scope"] == "mcp:tools"
    again = await refresh(auth_client, tokens.client, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "mcp:tools github:repos offline_access"  # the grant did not shrink


async def test_scope_not_offered_by_the_resource_is_invalid_scope_at_authorize(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # github:repos belongs to resource A only.
    request = new_request(client_id, resource=RESOURCE_B, scope="mcp:tools github:repos")
    assert_error_redirect(await auth_client.get(request.url()), CALLBACK, "invalid_scope", request.state)


@pytest.mark.parametrize("spelling", [RESOURCE_A, "HTTP://127.0.0.1:9101/mcp", "http://127.0.0.1:9101/mcp"])
async def test_access_token_audience_is_always_the_registered_canonical_resource(
    auth_client: httpx.AsyncClient, spelling: str
) -> None:
    tokens = await tokens_for(auth_client, "audience", resource=spelling)
    assert (await token_claims(auth_client, tokens.access_token))["aud"] == RESOURCE_A
    refreshed = await refresh(auth_client, tokens.client, tokens.refresh_token)
    assert (await token_claims(auth_client, refreshed.json()["access_token"]))["aud"] == RESOURCE_A


async def test_default_port_spelling_gets_the_canonical_audience(
    make_settings: Callable[..., AuthSettings],
) -> None:
    resource = "https://mcp.example/mcp"
    settings = make_settings(auth_resources=[{"resource": resource, "scopes": ["mcp:tools"]}])
    async with serve_in_process(create_app(settings)) as client:
        tokens = await tokens_for(
            client, "default-port", resource="https://MCP.example:443/mcp", scope="mcp:tools"
        )
        claims = await token_claims(client, tokens.access_token, audience=resource)
        assert claims["aud"] == resource
