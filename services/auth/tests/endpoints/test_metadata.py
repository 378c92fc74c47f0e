"""RFC 8414 metadata: exact issuer, every field MCP clients rely on, immune to spoofed headers."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings

from ..conftest import ISSUER, serve_in_process


async def test_metadata_issuer_is_byte_for_byte_the_configured_issuer(auth_client: httpx.AsyncClient) -> None:
    document = (await auth_client.get("/.well-known/oauth-authorization-server")).json()
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["registration_endpoint"] == f"{ISSUER}/register"
    assert document["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert {"none", "client_secret_basic", "client_secret_post"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert document["scopes_supported"] == ["github:repos", "mcp:tools", "offline_access"]


async def test_openid_configuration_serves_the_same_document(auth_client: httpx.AsyncClient) -> None:
    oauth = (await auth_client.get("/.well-known/oauth-authorization-server")).json()
    oidc = (await auth_client.get("/.well-known/openid-configuration")).json()
    assert oauth == oidc


async def test_spoofed_host_and_forwarded_headers_change_no_advertised_url(
    auth_client: httpx.AsyncClient,
) -> None:
    honest = (await auth_client.get("/.well-known/oauth-authorization-server")).json()
    spoofed = await auth_client.get(
        "/.well-known/oauth-authorization-server",
        headers={
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Prefix": "/evil",
            "Forwarded": "host=evil.example;proto=https",
        },
    )
    assert spoofed.json() == honest
    assert "evil" not in spoofed.text


async def test_issuer_with_a_path_is_served_at_the_rfc8414_inserted_location(
    make_settings: Callable[..., AuthSettings],
) -> None:
    issuer = "http://127.0.0.1:9000/tenant"
    async with serve_in_process(create_app(make_settings(auth_issuer=issuer))) as client:
        for path in (
            "/.well-known/oauth-authorization-server/tenant",
            "/.well-known/openid-configuration/tenant",
            "/tenant/.well-known/openid-configuration",
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.json()["issuer"] == issuer
            assert response.json()["token_endpoint"] == f"{issuer}/token"
        assert (await client.get("/tenant/jwks.json")).status_code == 200


async def test_jwks_publishes_the_signing_key_with_a_cache_header(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert key["alg"] == "ES256"
    assert key["kty"] == "EC"
    assert "d" not in key  # never the private part
