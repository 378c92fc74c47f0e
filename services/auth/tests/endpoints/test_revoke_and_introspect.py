"""Revocation (RFC 7009) for public and confidential clients, and introspection (RFC 7662) scoped
to the resource server's own audience."""

from __future__ import annotations

import time

import httpx

from mcp_auth_server.db.models import RevokedAccessToken

from ..conftest import RESOURCE_A, RESOURCE_B
from ..flow import approve_and_sign_in, browser_for, new_request, redeem, register
from ..operator_clients import machine_client, resource_server_client, runtime_of


async def signed_in_tokens(
    auth_client: httpx.AsyncClient, **registration: str
) -> tuple[dict[str, str], dict[str, str]]:
    client = await register(auth_client, **registration)
    request = new_request(client["client_id"])
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "rita")
    tokens = (await redeem(auth_client, request, answer["code"], auth=basic(client))).json()
    return client, tokens


def basic(client: dict[str, str]) -> tuple[str, str] | None:
    """The credentials of a confidential client (these tests register them for client_secret_basic)."""
    return (client["client_id"], client["client_secret"]) if "client_secret" in client else None


async def refresh(auth_client: httpx.AsyncClient, client: dict[str, str], token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client["client_id"]}
    return await auth_client.post("/token", data=data, auth=basic(client) or httpx.USE_CLIENT_DEFAULT)


async def introspect(auth_client: httpx.AsyncClient, rs: tuple[str, str], token: str) -> dict[str, object]:
    response = await auth_client.post("/introspect", auth=rs, data={"token": token})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return body


async def test_public_client_revokes_its_refresh_token_with_client_id_only(
    auth_client: httpx.AsyncClient,
) -> None:
    client, tokens = await signed_in_tokens(auth_client)
    response = await auth_client.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": client["client_id"]}
    )
    assert response.status_code == 200
    refused = await refresh(auth_client, client, tokens["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"


async def test_confidential_client_revokes_with_its_secret(auth_client: httpx.AsyncClient) -> None:
    client, tokens = await signed_in_tokens(auth_client, token_endpoint_auth_method="client_secret_basic")
    response = await auth_client.post(
        "/revoke",
        auth=(client["client_id"], client["client_secret"]),
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert response.status_code == 200
    assert (await refresh(auth_client, client, tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_revocation_by_another_client_has_no_effect(auth_client: httpx.AsyncClient) -> None:
    client, tokens = await signed_in_tokens(auth_client)
    other = await register(auth_client)
    for token in (tokens["refresh_token"], tokens["access_token"]):
        response = await auth_client.post("/revoke", data={"token": token, "client_id": other["client_id"]})
        assert response.status_code == 200  # RFC 7009 §2.2: nothing revealed
    assert (await refresh(auth_client, client, tokens["refresh_token"])).status_code == 200


async def test_unknown_token_gets_200(auth_client: httpx.AsyncClient) -> None:
    client = await register(auth_client)
    response = await auth_client.post(
        "/revoke", data={"token": "never-issued", "client_id": client["client_id"]}
    )
    assert response.status_code == 200


async def test_revoke_without_client_authentication_is_refused(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.post("/revoke", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_revoked_access_token_is_remembered_until_expiry_and_inactive(
    auth_client: httpx.AsyncClient,
) -> None:
    client, tokens = await signed_in_tokens(auth_client)
    rs = await resource_server_client(auth_client, RESOURCE_A)
    assert (await introspect(auth_client, rs, tokens["access_token"]))["active"] is True
    await auth_client.post(
        "/revoke", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert await introspect(auth_client, rs, tokens["access_token"]) == {"active": False}
    async with runtime_of(auth_client).sessions() as session:
        rows = (await session.execute(RevokedAccessToken.__table__.select())).all()
    assert any(row.expires_at > time.time() for row in rows)


async def test_introspection_reports_an_active_token_to_its_own_resource_server(
    auth_client: httpx.AsyncClient,
) -> None:
    client, tokens = await signed_in_tokens(auth_client)
    answer = await introspect(
        auth_client, await resource_server_client(auth_client, RESOURCE_A), tokens["access_token"]
    )
    assert answer["active"] is True
    assert answer["aud"] == RESOURCE_A
    assert answer["client_id"] == client["client_id"]
    assert answer["username"] == "rita"
    assert answer["token_type"] == "Bearer"


async def test_a_resource_server_learns_nothing_about_tokens_for_another_resource(
    auth_client: httpx.AsyncClient,
) -> None:
    _, tokens = await signed_in_tokens(auth_client)
    other_rs = await resource_server_client(auth_client, RESOURCE_B)
    assert await introspect(auth_client, other_rs, tokens["access_token"]) == {"active": False}


async def test_garbage_and_refresh_tokens_are_inactive(auth_client: httpx.AsyncClient) -> None:
    _, tokens = await signed_in_tokens(auth_client)
    rs = await resource_server_client(auth_client, RESOURCE_A)
    for token in ("garbage", tokens["refresh_token"], tokens["access_token"][:-4] + "AAAA"):
        assert await introspect(auth_client, rs, token) == {"active": False}


async def test_only_resource_server_clients_may_introspect(auth_client: httpx.AsyncClient) -> None:
    _, tokens = await signed_in_tokens(auth_client)
    machine = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    refused = await auth_client.post("/introspect", auth=machine, data={"token": tokens["access_token"]})
    assert refused.status_code == 403
    assert refused.json()["error"] == "unauthorized_client"
    public = await register(auth_client)
    anonymous = await auth_client.post(
        "/introspect", data={"token": tokens["access_token"], "client_id": public["client_id"]}
    )
    assert anonymous.status_code == 403
