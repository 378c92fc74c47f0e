"""client_credentials (RFC 6749 §4.4) for machine clients: only the resources and scopes the
operator allowed; the token's `sub` is the client (RFC 9068 §2.2)."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import RESOURCE_A, RESOURCE_B
from ..flow import register, token_claims
from ..operator_clients import machine_client


async def test_machine_client_gets_a_token_for_its_allowed_resource(auth_client: httpx.AsyncClient) -> None:
    client_id, secret = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    response = await auth_client.post(
        "/token", auth=(client_id, secret), data={"grant_type": "client_credentials", "resource": RESOURCE_A}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "mcp:tools"
    claims = await token_claims(auth_client, body["access_token"])
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["aud"] == RESOURCE_A
    assert "auth_time" not in claims
    assert "preferred_username" not in claims


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"resource": RESOURCE_B}, "invalid_target"),
        ({}, "invalid_target"),
        ({"resource": "http://127.0.0.1:9101/mcp-other"}, "invalid_target"),
        ({"resource": RESOURCE_A, "scope": "mcp:tools github:repos"}, "invalid_scope"),
        ({"resource": RESOURCE_A, "scope": "offline_access"}, "invalid_scope"),
    ],
)
async def test_machine_client_cannot_reach_beyond_what_the_operator_allowed(
    auth_client: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    client_id, secret = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    response = await auth_client.post(
        "/token", auth=(client_id, secret), data={"grant_type": "client_credentials", **form}
    )
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_a_dynamically_registered_confidential_client_cannot_use_client_credentials(
    auth_client: httpx.AsyncClient,
) -> None:
    client = await register(auth_client, token_endpoint_auth_method="client_secret_post")
    response = await auth_client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "resource": RESOURCE_A,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_a_wrong_machine_secret_is_invalid_client(auth_client: httpx.AsyncClient) -> None:
    client_id, _ = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    response = await auth_client.post(
        "/token", auth=(client_id, "wrong"), data={"grant_type": "client_credentials", "resource": RESOURCE_A}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
