"""Spoofed `Host` and `X-Forwarded-*` headers: no URL we advertise or redirect to may follow them.

Covers RFC 8414 §2 and §3.3 (the issuer and endpoint URLs are fixed; clients compare them byte
for byte), RFC 9207 §2 (`iss` in authorization responses), RFC 9068 §2.2 (`iss` claim), and
RFC 9700 §4.11 (open redirection) through host-header injection. Every URL is built from
AUTH_ISSUER; the server runs with proxy headers off.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import jwt

from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Page
from mcp_testing.github_standin import GitHubStandIn

from ..conftest import ISSUER
from ..flow import (
    GITHUB_CALLBACK,
    approve_and_sign_in,
    approved_client,
    browser_for,
    github_service,
    new_request,
    query,
    register,
)

SPOOFED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/evil",
    "X-Original-URL": "https://evil.example/",
    "Forwarded": "host=evil.example;proto=https",
}


async def test_metadata_urls_ignore_spoofed_headers(auth_client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        honest = (await auth_client.get(path)).json()
        spoofed = await auth_client.get(path, headers=SPOOFED)
        assert spoofed.json() == honest
        assert "evil" not in spoofed.text
        assert honest["issuer"] == ISSUER


async def test_consent_form_action_ignores_spoofed_headers(auth_client: httpx.AsyncClient) -> None:
    registered = await register(auth_client)
    page = await auth_client.get(new_request(registered["client_id"]).url(), headers=SPOOFED)
    assert page.status_code == 200
    assert f'action="{ISSUER}/consent"' in page.text
    assert "evil" not in page.text


async def test_upstream_redirect_and_sign_in_form_ignore_spoofed_headers(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client)
    consent = await auth_client.get(new_request(registered["client_id"]).url(), headers=SPOOFED)
    form = Page(str(consent.url), consent.status_code, consent.text, consent.headers).forms()[0]
    upstream = await auth_client.post(
        "/consent", data={**form.fields, "decision": "approve"}, headers=SPOOFED
    )
    assert upstream.status_code == 303
    assert upstream.headers["location"].startswith(f"{ISSUER}/upstream/dev/login?")
    sign_in = await auth_client.get(upstream.headers["location"], headers=SPOOFED)
    assert f'action="{ISSUER}/callback"' in sign_in.text
    assert "evil" not in sign_in.text


async def test_authorization_responses_and_token_issuer_ignore_spoofed_headers(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await approved_client(auth_client)
    error = await auth_client.get(
        new_request(registered["client_id"]).url(response_type="token"), headers=SPOOFED
    )
    assert query(error.headers["location"])["iss"] == ISSUER

    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "spoofer")
    assert answer["iss"] == ISSUER
    response = await auth_client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.verifier,
            "client_id": request.client_id,
        },
        headers=SPOOFED,
    )
    assert response.status_code == 200, response.text
    assert jwt.decode(response.json()["access_token"], options={"verify_signature": False})["iss"] == ISSUER


async def test_github_login_url_callback_ignores_spoofed_headers(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    async with github_service(make_settings, github) as service:
        registered = await register(service.client)
        consent = await service.client.get(new_request(registered["client_id"]).url(), headers=SPOOFED)
        form = Page(str(consent.url), consent.status_code, consent.text, consent.headers).forms()[0]
        upstream = await service.client.post(
            "/consent", data={**form.fields, "decision": "approve"}, headers=SPOOFED
        )
        assert upstream.status_code == 303
        assert upstream.headers["location"].startswith(f"{github.base_url}/login/oauth/authorize?")
        assert query(upstream.headers["location"])["redirect_uri"] == GITHUB_CALLBACK
