"""Issue 14 finding 8: `offline_access` from a client registered without `refresh_token`.

Chosen behaviour (docs/auth-service.md): a client that asks for `offline_access` in its registration
`scope` gets `refresh_token` registered too, and the registration response says so. A client whose
registration never mentioned it (a metadata document or an operator's client without the grant) still
gets its request narrowed, visibly: the token response's `scope` omits `offline_access` (RFC 6749 §3.3
requires saying so) and carries no refresh token.
"""

from __future__ import annotations

import httpx

from ..flow import approve_and_sign_in, browser_for, new_request, redeem, register


async def test_offline_access_in_the_registration_scope_registers_refresh_tokens(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(
        auth_client, grant_types=["authorization_code"], scope="mcp:tools offline_access"
    )
    assert registered["grant_types"] == ["authorization_code", "refresh_token"]
    request = new_request(registered["client_id"], scope="mcp:tools offline_access")
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "offline-reg")
    body = (await redeem(auth_client, request, answer["code"])).json()
    assert body["scope"] == "mcp:tools offline_access"
    assert "refresh_token" in body


async def test_without_the_grant_the_narrowed_scope_is_visible_in_the_token_response(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client, grant_types=["authorization_code"])
    assert registered["grant_types"] == ["authorization_code"]
    request = new_request(registered["client_id"], scope="mcp:tools offline_access")
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "offline-narrow")
    body = (await redeem(auth_client, request, answer["code"])).json()
    assert body["scope"] == "mcp:tools"
    assert "refresh_token" not in body
