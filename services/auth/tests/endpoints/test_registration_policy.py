"""Registration policy: DCR on or off, the initial access token (RFC 7591 §3), allowed redirect
URI patterns, and self-registered clients that expire when unused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import Client
from mcp_auth_server.settings import AuthSettings

from ..conftest import serve_in_process
from ..flow import CALLBACK

CLAUDE = "https://claude.ai/api/mcp/auth_callback"


def registration(*uris: str) -> dict[str, Any]:
    return {"redirect_uris": list(uris or [CALLBACK]), "token_endpoint_auth_method": "none"}


async def test_registration_switched_off_is_refused_and_not_advertised(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_registration_enabled=False))) as client:
        response = await client.post("/register", json=registration())
        assert response.status_code == 403
        assert response.json()["error"] == "access_denied"
        metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in metadata


async def test_initial_access_token_is_required_when_configured(
    make_settings: Callable[..., AuthSettings],
) -> None:
    settings = make_settings(auth_registration_token="initial-access-token-0123456789")
    async with serve_in_process(create_app(settings)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic aW5pdGlhbA=="}):
            refused = await client.post("/register", json=registration(), headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"] == "invalid_token"
        accepted = await client.post(
            "/register",
            json=registration(),
            headers={"Authorization": "Bearer initial-access-token-0123456789"},
        )
        assert accepted.status_code == 201


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        (CLAUDE, True),
        ("https://chatgpt.com/connector/oauth/abc123", True),
        ("http://127.0.0.1:55123/callback", True),
        ("http://localhost:3000/oauth/callback", True),
        ("https://chatgpt.com/connector/oauth/abc/../../evil", False),
        ("https://evil.example/api/mcp/auth_callback", False),
        ("https://claude.ai/api/mcp/auth_callback/extra", False),
        ("cursor://anysphere.cursor-retrieval/oauth/callback", False),
    ],
)
async def test_redirect_uris_outside_the_allowed_patterns_are_refused(
    uri: str, allowed: bool, make_settings: Callable[..., AuthSettings]
) -> None:
    patterns = f"{CLAUDE},https://chatgpt.com/connector/oauth/*,loopback"
    async with serve_in_process(
        create_app(make_settings(auth_registration_redirect_uris=patterns))
    ) as client:
        response = await client.post("/register", json=registration(uri))
        if allowed:
            assert response.status_code == 201, response.text
        else:
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_redirect_uri"


async def test_an_unused_self_registered_client_expires_and_gets_invalid_client(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_client_idle_days=30))) as client:
        registered = (await client.post("/register", json=registration())).json()
        runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
        async with runtime.sessions() as session:
            await session.execute(
                update(Client)
                .where(Client.client_id == registered["client_id"])
                .values(created_at=0, last_used_at=None)
            )
            await session.commit()
        response = await client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": "c",
                "code_verifier": "v" * 43,
                "redirect_uri": CALLBACK,
                "client_id": registered["client_id"],
            },
        )
        assert response.status_code == 401  # claude.ai registers again on this
        assert response.json()["error"] == "invalid_client"
        async with runtime.sessions() as session:
            assert await session.get(Client, registered["client_id"]) is None


async def test_an_old_client_used_recently_does_not_expire(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_client_idle_days=30))) as client:
        registered = (await client.post("/register", json=registration())).json()
        runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
        async with runtime.sessions() as session:
            await session.execute(
                update(Client)
                .where(Client.client_id == registered["client_id"])
                .values(created_at=0, last_used_at=int(time.time()) - 86_400)
            )
            await session.commit()
        page = await client.get(
            "/authorize",
            params={"client_id": registered["client_id"], "redirect_uri": CALLBACK, "response_type": "code"},
        )
        # Known client: the error is answered (a page with a link, as nobody approved it yet), and
        # the client is kept.
        assert page.status_code == 400
        assert "iss=" in page.text
        async with runtime.sessions() as session:
            assert await session.get(Client, registered["client_id"]) is not None
