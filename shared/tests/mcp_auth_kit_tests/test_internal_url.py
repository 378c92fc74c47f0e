"""Reaching the auth service at an internal URL while trusting only its public issuer (issue 13, finding 4).

Inside a cluster the public issuer (`https://auth.example.test` here, a name that never resolves) is not
reachable; the auth service's Service is. Metadata, JWKS, introspection and token exchange go to the
internal URL; the metadata's `issuer` and every token's `iss` are still compared with the public issuer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from mcp.server.auth.provider import AccessToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_auth_kit import (
    IntrospectingVerifier,
    InvalidToken,
    JWTVerifier,
    UpstreamTokenClient,
    VerificationUnavailable,
    protect,
)
from mcp_auth_kit.fastmcp_auth import KitAuthProvider
from mcp_auth_kit.rfc8414_discovery import IssuerMismatch, internal_origin, metadata_url, via_internal

from .conftest import (
    Signer,
    claims_for,
    notes_server,
    resource_url,
    serve,
    serve_protected,
    sign,
    unused_port,
)
from .test_fastmcp import fastmcp_notes, serve_fastmcp

PUBLIC_ISSUER = "https://auth.example.test"


@dataclass
class InClusterAuth:
    """The auth service as seen from inside the cluster: it publishes the public issuer's URLs."""

    signer: Signer
    issuer: str = PUBLIC_ISSUER
    internal_url: str = ""
    paths: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> None:
            self.paths.append(request.url.path)

        async def metadata(request: Request) -> Response:
            await record(request)
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{PUBLIC_ISSUER}/jwks.json",
                    "token_endpoint": f"{PUBLIC_ISSUER}/token",
                    "introspection_endpoint": f"{PUBLIC_ISSUER}/introspect",
                }
            )

        async def jwks(request: Request) -> Response:
            await record(request)
            return JSONResponse({"keys": [self.signer.jwk]})

        async def token(request: Request) -> Response:
            await record(request)
            return JSONResponse({"access_token": "gho_upstream", "token_type": "Bearer", "expires_in": 600})

        async def introspect(request: Request) -> Response:
            await record(request)
            return JSONResponse({"active": True})

        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", metadata),
                Route("/jwks.json", jwks),
                Route("/token", token, methods=["POST"]),
                Route("/introspect", introspect, methods=["POST"]),
            ]
        )


@pytest_asyncio.fixture
async def in_cluster(es256: Signer) -> AsyncIterator[InClusterAuth]:
    auth = InClusterAuth(es256)
    async with serve(auth.app()) as url:
        auth.internal_url = url
        yield auth


def token(auth: InClusterAuth, **claims: Any) -> str:
    return sign(auth.signer, claims_for(PUBLIC_ISSUER, resource_url(), **claims))


async def test_tokens_of_the_public_issuer_verify_with_keys_fetched_internally(
    in_cluster: InClusterAuth,
) -> None:
    verifier = JWTVerifier(
        issuer=PUBLIC_ISSUER, resource_url=resource_url(), internal_url=in_cluster.internal_url
    )
    try:
        principal = await verifier.verify(token(in_cluster))
    finally:
        await verifier.aclose()
    assert principal.subject == "user-1"
    assert in_cluster.paths == ["/.well-known/oauth-authorization-server", "/jwks.json"]


async def test_a_token_naming_the_internal_url_as_issuer_is_refused(in_cluster: InClusterAuth) -> None:
    """The internal URL is only a way in: `iss` must still be the public issuer, exactly."""
    verifier = JWTVerifier(
        issuer=PUBLIC_ISSUER, resource_url=resource_url(), internal_url=in_cluster.internal_url
    )
    try:
        with pytest.raises(InvalidToken):
            await verifier.verify(token(in_cluster, iss=in_cluster.internal_url))
    finally:
        await verifier.aclose()


async def test_metadata_naming_another_issuer_is_refused(in_cluster: InClusterAuth) -> None:
    """Whoever answers at the internal URL must be the public issuer's auth service: start-up stops."""
    in_cluster.issuer = "https://other.example.test"
    verifier = JWTVerifier(
        issuer=PUBLIC_ISSUER, resource_url=resource_url(), internal_url=in_cluster.internal_url
    )
    asked = f"{in_cluster.internal_url}/.well-known/oauth-authorization-server"
    try:
        with pytest.raises(IssuerMismatch) as mismatch:
            await verifier.jwks.start()
        assert (mismatch.value.expected, mismatch.value.got) == (PUBLIC_ISSUER, "https://other.example.test")
        assert mismatch.value.url == asked, "the line names the URL actually asked"
        with pytest.raises(VerificationUnavailable, match="issuer mismatch"):
            await verifier.verify(token(in_cluster))
    finally:
        await verifier.aclose()
    assert "/jwks.json" not in in_cluster.paths


async def test_introspection_and_token_exchange_go_to_the_internal_url(in_cluster: InClusterAuth) -> None:
    introspecting = IntrospectingVerifier(
        issuer=PUBLIC_ISSUER,
        resource_url=resource_url(),
        client_id="mcp-one",
        client_secret="s" * 40,
        internal_url=in_cluster.internal_url,
    )
    exchange = UpstreamTokenClient(
        issuer=PUBLIC_ISSUER,
        client_id="mcp-one",
        client_secret="s" * 40,
        internal_url=in_cluster.internal_url,
    )
    try:
        principal = await introspecting.verify(token(in_cluster))
        upstream = await exchange.token_for(
            "github", AccessToken(token="t", client_id="c", scopes=[], expires_at=None)
        )
    finally:
        await introspecting.aclose()
        await exchange.aclose()
    assert principal.subject == "user-1"
    assert upstream == "gho_upstream"
    assert {"/introspect", "/token"} <= set(in_cluster.paths)


async def test_protect_becomes_ready_without_resolving_the_public_issuer(in_cluster: InClusterAuth) -> None:
    async with (
        serve_protected(PUBLIC_ISSUER, internal_url=in_cluster.internal_url) as served,
        httpx.AsyncClient() as client,
    ):
        assert (await client.get(f"{served.url}/readyz")).status_code == 200
        metadata = (await client.get(served.metadata_url)).json()
    assert metadata["authorization_servers"] == [PUBLIC_ISSUER], "clients are told the public issuer"


async def test_fastmcp_becomes_ready_without_resolving_the_public_issuer(in_cluster: InClusterAuth) -> None:
    """The same for FastMCP, behind `protect()` and behind its own app with `KitAuthProvider`."""
    behind_protect = serve_fastmcp(PUBLIC_ISSUER, internal_url=in_cluster.internal_url)
    async with behind_protect as served, httpx.AsyncClient() as client:
        assert (await client.get(f"{served.url}/readyz")).status_code == 200
    port = unused_port()
    server = fastmcp_notes().server
    server.auth = KitAuthProvider(
        resource_url=f"http://127.0.0.1:{port}/mcp",
        issuer=PUBLIC_ISSUER,
        internal_url=in_cluster.internal_url,
    )
    async with serve(server.http_app(path="/mcp"), port) as url, httpx.AsyncClient() as client:
        ready = await client.get(f"{url}/readyz")
        metadata = (await client.get(f"{url}/.well-known/oauth-protected-resource/mcp")).json()
    assert ready.status_code == 200
    assert metadata["authorization_servers"] == [PUBLIC_ISSUER]


def test_a_malformed_internal_url_is_refused_by_every_entry_point() -> None:
    for build in (
        lambda: protect(
            notes_server().mcp, resource_url=resource_url(), issuer=PUBLIC_ISSUER, internal_url="h:1"
        ),
        lambda: KitAuthProvider(resource_url=resource_url(), issuer=PUBLIC_ISSUER, internal_url="h:1"),
    ):
        with pytest.raises(ValueError, match="internal URL"):
            build()


def test_only_endpoints_on_the_issuers_origin_move_inside() -> None:
    internal = "http://mcp-auth-server:9000"
    assert via_internal(f"{PUBLIC_ISSUER}/jwks.json", PUBLIC_ISSUER, internal) == f"{internal}/jwks.json"
    assert (
        via_internal("https://keys.example.test/jwks", PUBLIC_ISSUER, internal)
        == "https://keys.example.test/jwks"
    )
    # A host that merely starts with the issuer's is another origin.
    assert via_internal(f"{PUBLIC_ISSUER}.evil/x", PUBLIC_ISSUER, internal) == f"{PUBLIC_ISSUER}.evil/x"
    assert metadata_url(f"{PUBLIC_ISSUER}/tenant", internal) == (
        f"{internal}/.well-known/oauth-authorization-server/tenant"
    )


@pytest.mark.parametrize(
    "url",
    ["mcp-auth-server:9000", "http://mcp-auth-server:9000/auth", "http://u@h:1", "ftp://h", "http://h?x"],
)
def test_internal_url_is_an_origin_only(url: str) -> None:
    with pytest.raises(ValueError, match="internal URL"):
        internal_origin(url)
