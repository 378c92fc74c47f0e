"""DPoP at the auth service (RFC 9449 §5, §6.2, §8, §10): bound tokens, bound codes, bound refresh
tokens, the per-resource policy and nonces — one attack or rule per test, against the real app."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from mcp_auth_kit.dpop_client import DPoPAuth, DPoPKey
from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import AuthorizationCode, Grant
from mcp_auth_server.settings import AuthSettings

from ..conftest import ISSUER, RESOURCE_A, RESOURCES, serve_in_process
from ..flow import (
    CALLBACK,
    AuthorizationRequest,
    Database,
    all_rows,
    approve_and_sign_in,
    approved_client,
    assert_error_redirect,
    assert_oauth_error,
    audit_events,
    browser_for,
    new_request,
    register,
    token_claims,
)
from ..operator_clients import machine_client, resource_server_client

TOKEN_URL = f"{ISSUER}/token"


async def code_for(
    client: httpx.AsyncClient, username: str = "alice", **url_params: str
) -> tuple[dict[str, Any], AuthorizationRequest, str]:
    """A public client registered and approved by `username`: its registration, request, and code."""
    registered = await register(client)
    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(client), request.url(**url_params), username)
    return registered, request, answer["code"]


async def redeem(
    client: httpx.AsyncClient,
    request: AuthorizationRequest,
    code: str,
    key: DPoPKey | None,
    **extra: str,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "client_id": request.client_id,
        **extra,
    }
    return await client.post("/token", data=data, auth=DPoPAuth(key) if key else httpx.USE_CLIENT_DEFAULT)


async def refresh(
    client: httpx.AsyncClient, registered: dict[str, Any], refresh_token: str, key: DPoPKey | None
) -> httpx.Response:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": registered["client_id"],
    }
    if registered.get("client_secret"):
        data["client_secret"] = registered["client_secret"]
    return await client.post("/token", data=data, auth=DPoPAuth(key) if key else httpx.USE_CLIENT_DEFAULT)


async def bound_tokens(
    client: httpx.AsyncClient, key: DPoPKey, username: str = "alice"
) -> tuple[dict[str, Any], dict[str, Any]]:
    registered, request, code = await code_for(client, username)
    response = await redeem(client, request, code, key)
    assert response.status_code == 200, response.text
    return registered, response.json()


def post_with_proof(client: httpx.AsyncClient, proof: str, data: dict[str, str]) -> Any:
    return client.post("/token", data=data, headers={"DPoP": proof})


async def test_metadata_lists_the_dpop_signing_algorithms(auth_client: httpx.AsyncClient) -> None:
    document = (await auth_client.get("/.well-known/oauth-authorization-server")).json()
    assert {"ES256", "RS256", "EdDSA"} <= set(document["dpop_signing_alg_values_supported"])
    assert "HS256" not in document["dpop_signing_alg_values_supported"]


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
async def test_a_code_redeemed_with_a_proof_gives_tokens_bound_to_its_key(
    auth_client: httpx.AsyncClient, database: Database, algorithm: str
) -> None:
    key = DPoPKey.generate(algorithm)
    registered, body = await bound_tokens(auth_client, key)
    assert body["token_type"] == "DPoP"
    claims = await token_claims(auth_client, body["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    [grant] = await all_rows(database, Grant, Grant.client_id == registered["client_id"])
    assert grant.dpop_jkt == key.jkt


async def test_a_code_redeemed_without_a_proof_still_gives_bearer_tokens(
    auth_client: httpx.AsyncClient,
) -> None:
    _, request, code = await code_for(auth_client)
    body = (await redeem(auth_client, request, code, None)).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in await token_claims(auth_client, body["access_token"])


async def test_a_proof_for_another_server_is_invalid_dpop_proof(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await code_for(auth_client)
    key = DPoPKey.generate()
    for proof in (
        key.proof("POST", "https://evil.example/token"),
        key.proof("GET", TOKEN_URL),
        key.proof("POST", f"{ISSUER}/introspect"),
    ):
        response = await post_with_proof(
            auth_client,
            proof,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": request.redirect_uri,
                "code_verifier": request.verifier,
                "client_id": request.client_id,
            },
        )
        assert_oauth_error(response, "invalid_dpop_proof")
    assert (await redeem(auth_client, request, code, key)).status_code == 200  # the code was never spent


async def test_a_proof_trusts_the_issuer_not_a_spoofed_host(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await code_for(auth_client)
    proof = DPoPKey.generate().proof("POST", "https://evil.example/token")
    response = await auth_client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.verifier,
            "client_id": request.client_id,
        },
        headers={
            "DPoP": proof,
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert_oauth_error(response, "invalid_dpop_proof")


async def test_a_replayed_proof_at_the_token_endpoint_is_refused(auth_client: httpx.AsyncClient) -> None:
    key = DPoPKey.generate()
    registered, body = await bound_tokens(auth_client, key)
    proof = key.proof("POST", TOKEN_URL)
    data = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": registered["client_id"],
    }
    assert (await post_with_proof(auth_client, proof, data)).status_code == 200
    second = await post_with_proof(auth_client, proof, {**data, "refresh_token": "whatever"})
    assert_oauth_error(second, "invalid_dpop_proof")
    assert "already used" in second.json()["error_description"]


@pytest.mark.parametrize("redis", [False, True], ids=["database", "redis"])
async def test_a_proof_replayed_at_another_replica_is_refused(
    make_settings: Callable[..., AuthSettings], redis: bool
) -> None:
    """Two replicas sharing only Postgres (or Redis): the jti is remembered where both look."""
    extra = {"auth_redis_url": "redis://127.0.0.1:6379/0"} if redis else {}
    first_app, second_app = create_app(make_settings(**extra)), create_app(make_settings(**extra))
    async with serve_in_process(first_app) as first, serve_in_process(second_app) as second:
        client = await register(first)
        proof = DPoPKey.generate().proof("POST", TOKEN_URL)
        data = {"grant_type": "refresh_token", "refresh_token": "unknown", "client_id": client["client_id"]}
        assert_oauth_error(await post_with_proof(first, proof, data), "invalid_grant")  # the proof was fine
        assert_oauth_error(await post_with_proof(second, proof, data), "invalid_dpop_proof")


async def test_two_dpop_headers_are_refused(auth_client: httpx.AsyncClient) -> None:
    key = DPoPKey.generate()
    client = await register(auth_client)
    response = await auth_client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client["client_id"]},
        headers=[("DPoP", key.proof("POST", TOKEN_URL)), ("DPoP", key.proof("POST", TOKEN_URL))],
    )
    assert_oauth_error(response, "invalid_dpop_proof")


async def test_a_code_bound_by_dpop_jkt_cannot_be_redeemed_with_another_key(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    key, thief = DPoPKey.generate(), DPoPKey.generate()
    _, request, code = await code_for(auth_client, dpop_jkt=key.jkt)
    [stored] = await all_rows(database, AuthorizationCode, AuthorizationCode.client_id == request.client_id)
    assert stored.dpop_jkt == key.jkt
    assert_oauth_error(await redeem(auth_client, request, code, thief), "invalid_grant")
    assert_oauth_error(await redeem(auth_client, request, code, None), "invalid_grant")
    response = await redeem(auth_client, request, code, key)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    [event] = await audit_events(database, "authorization_code_issued", request.client_id)
    assert event.details["dpop_jkt"] == key.jkt


@pytest.mark.parametrize("dpop_jkt", ["short", "x" * 44, "not/base64url+chars-and-of-43-characters-x"])
async def test_a_dpop_jkt_that_is_no_thumbprint_is_invalid_request(
    auth_client: httpx.AsyncClient, dpop_jkt: str
) -> None:
    registered = await approved_client(auth_client)
    request = new_request(registered["client_id"])
    response = await auth_client.get(request.url(dpop_jkt=dpop_jkt))
    assert_error_redirect(response, CALLBACK, "invalid_request", request.state)


async def test_a_bound_refresh_token_without_a_proof_is_invalid_grant(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    key = DPoPKey.generate()
    registered, body = await bound_tokens(auth_client, key)
    refused = await refresh(auth_client, registered, body["refresh_token"], None)
    assert_oauth_error(refused, "invalid_grant")
    [event] = await audit_events(database, "refresh_token_key_mismatch", registered["client_id"])
    assert event.details["dpop_jkt"] == key.jkt
    assert event.details["proof_dpop_jkt"] is None
    # The stolen token burnt nothing: the client itself still refreshes with the same token.
    assert (await refresh(auth_client, registered, body["refresh_token"], key)).status_code == 200


async def test_a_bound_refresh_token_with_another_keys_proof_is_invalid_grant(
    auth_client: httpx.AsyncClient,
) -> None:
    key = DPoPKey.generate()
    registered, body = await bound_tokens(auth_client, key)
    assert_oauth_error(
        await refresh(auth_client, registered, body["refresh_token"], DPoPKey.generate()), "invalid_grant"
    )


async def test_refreshing_with_the_key_rotates_and_stays_bound(auth_client: httpx.AsyncClient) -> None:
    key = DPoPKey.generate()
    registered, body = await bound_tokens(auth_client, key)
    for _ in range(3):
        response = await refresh(auth_client, registered, body["refresh_token"], key)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "DPoP"
        assert (await token_claims(auth_client, body["access_token"]))["cnf"] == {"jkt": key.jkt}
    assert_oauth_error(await refresh(auth_client, registered, body["refresh_token"], None), "invalid_grant")


async def test_an_unbound_public_grant_is_not_bound_by_a_later_proof(auth_client: httpx.AsyncClient) -> None:
    """§5: bound when issued; the attack this stops is in security/test_dpop_attacks.py."""
    _, request, code = await code_for(auth_client)
    body = (await redeem(auth_client, request, code, None)).json()
    registered = {"client_id": request.client_id}
    refused = await refresh(auth_client, registered, body["refresh_token"], DPoPKey.generate())
    assert_oauth_error(refused, "invalid_grant")
    unbound = await refresh(auth_client, registered, body["refresh_token"], None)
    assert unbound.status_code == 200, unbound.text
    assert unbound.json()["token_type"] == "Bearer"


async def test_a_confidential_clients_refresh_token_is_bound_to_the_client_not_the_key(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client, token_endpoint_auth_method="client_secret_post")
    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(auth_client), request.url())
    key = DPoPKey.generate()
    body = (
        await redeem(auth_client, request, answer["code"], key, client_secret=registered["client_secret"])
    ).json()
    assert body["token_type"] == "DPoP"
    unbound = await refresh(auth_client, registered, body["refresh_token"], None)  # RFC 9449 §5
    assert unbound.status_code == 200, unbound.text
    assert unbound.json()["token_type"] == "Bearer"


async def test_client_credentials_with_a_proof_give_a_bound_token(auth_client: httpx.AsyncClient) -> None:
    client_id, secret = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    key = DPoPKey.generate()
    response = await auth_client.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE_A},
        auth=_basic_and_dpop(client_id, secret, key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert (await token_claims(auth_client, response.json()["access_token"]))["cnf"] == {"jkt": key.jkt}


def _basic_and_dpop(client_id: str, secret: str, key: DPoPKey) -> httpx.Auth:
    class BasicThenDPoP(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Any:
            request.headers["Authorization"] = httpx.BasicAuth(client_id, secret)._auth_header
            request.headers["DPoP"] = key.proof(request.method, str(request.url))
            yield request

    return BasicThenDPoP()


@pytest.fixture
async def required_client(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[httpx.AsyncClient]:
    """The app with RESOURCE_A configured `dpop: required`."""
    resources = [{**RESOURCES[0], "dpop": "required"}, RESOURCES[1]]
    async with serve_in_process(create_app(make_settings(auth_resources=resources))) as client:
        yield client


async def test_a_required_resource_refuses_a_code_redemption_without_a_proof(
    required_client: httpx.AsyncClient,
) -> None:
    _, request, code = await code_for(required_client)
    body = assert_oauth_error(await redeem(required_client, request, code, None), "invalid_dpop_proof")
    assert "DPoP" in body["error_description"]
    response = await redeem(required_client, request, code, DPoPKey.generate())  # the code was not spent
    assert response.json()["token_type"] == "DPoP"


async def test_a_required_resource_refuses_client_credentials_without_a_proof(
    required_client: httpx.AsyncClient,
) -> None:
    client_id, secret = await machine_client(required_client, [RESOURCE_A], ["mcp:tools"])
    response = await required_client.post(
        "/token", auth=(client_id, secret), data={"grant_type": "client_credentials", "resource": RESOURCE_A}
    )
    assert_oauth_error(response, "invalid_dpop_proof")


async def test_a_required_resource_refuses_a_refresh_without_a_proof(
    required_client: httpx.AsyncClient,
) -> None:
    registered = await register(required_client, token_endpoint_auth_method="client_secret_post")
    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(required_client), request.url())
    key = DPoPKey.generate()
    body = (
        await redeem(required_client, request, answer["code"], key, client_secret=registered["client_secret"])
    ).json()
    assert_oauth_error(
        await refresh(required_client, registered, body["refresh_token"], None), "invalid_dpop_proof"
    )


@pytest.fixture
async def nonce_client(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings(auth_dpop_nonces=True))) as client:
        yield client


async def test_a_proof_without_the_nonce_is_use_dpop_nonce_with_a_fresh_one(
    nonce_client: httpx.AsyncClient,
) -> None:
    client = await register(nonce_client)
    data = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": client["client_id"]}
    response = await post_with_proof(nonce_client, DPoPKey.generate().proof("POST", TOKEN_URL), data)
    assert_oauth_error(response, "use_dpop_nonce")
    assert response.headers["dpop-nonce"]


async def test_nonce_round_trip_at_the_token_endpoint(nonce_client: httpx.AsyncClient) -> None:
    key = DPoPKey.generate()
    auth = DPoPAuth(key)
    registered, request, code = await code_for(nonce_client)
    seen: list[str] = []  # the DPoP header of each request sent
    nonce_client.event_hooks["request"].append(_record(seen))
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "client_id": request.client_id,
    }
    response = await nonce_client.post("/token", data=data, auth=auth)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert response.headers["dpop-nonce"]  # §8.2: the next nonce comes with the success
    first, second = (jwt.decode(proof, options={"verify_signature": False}) for proof in seen)
    assert "nonce" not in first
    assert second["nonce"]
    # The nonce held from that answer lets the next request through at once.
    del seen[:]
    again = await nonce_client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": response.json()["refresh_token"],
            "client_id": registered["client_id"],
        },
        auth=auth,
    )
    assert again.status_code == 200, again.text
    assert len(seen) == 1


def _record(seen: list[str]) -> Callable[[httpx.Request], Any]:
    async def hook(request: httpx.Request) -> None:
        if request.url.path == "/token":
            seen.append(request.headers["dpop"])

    return hook


async def test_introspection_reports_the_binding(auth_client: httpx.AsyncClient) -> None:
    key = DPoPKey.generate()
    _, body = await bound_tokens(auth_client, key)
    client_id, secret = await resource_server_client(auth_client, RESOURCE_A)
    response = await auth_client.post(
        "/introspect", auth=(client_id, secret), data={"token": body["access_token"]}
    )
    answer = response.json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"  # RFC 9449 §6.2
    assert answer["cnf"] == {"jkt": key.jkt}


async def test_the_connected_apps_page_says_which_grants_are_key_bound(
    auth_client: httpx.AsyncClient,
) -> None:
    username = f"carol-{secrets.token_hex(4)}"
    bound, _ = await bound_tokens(auth_client, DPoPKey.generate(), username)  # signs in this cookie jar
    _, request, code = await code_for(auth_client, username)
    await redeem(auth_client, request, code, None)
    page = await auth_client.get("/account/apps")
    sections = {
        match.group(1): match.group(2)
        for match in re.finditer(r'data-client-id="([^"]+)">(.*?)</section>', page.text, re.DOTALL)
    }
    assert len(sections) == 2
    assert "Bound to the application" in sections[bound["client_id"]]
    assert "Bound to the application" not in sections[request.client_id]


async def test_dpop_bound_grants_are_named_when_revoked(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    key = DPoPKey.generate()
    registered, body = await bound_tokens(auth_client, key)
    response = await auth_client.post(
        "/revoke", data={"token": body["refresh_token"], "client_id": registered["client_id"]}
    )
    assert response.status_code == 200
    [event] = await audit_events(database, "grant_revoked", registered["client_id"])
    assert event.details["dpop_jkt"] == key.jkt
    async with database() as session:
        grant = await session.scalar(select(Grant).where(Grant.client_id == registered["client_id"]))
    assert grant is not None
    assert grant.revoked_at is not None
    assert json.dumps(event.details)  # JSON-serialisable as stored
