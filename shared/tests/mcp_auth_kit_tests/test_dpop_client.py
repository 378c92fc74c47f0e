"""The DPoP client against a real HTTP server that checks its proofs and demands nonces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import httpx2
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_auth_kit.dpop_client import DPoPAuth, DPoPKey
from mcp_auth_kit.replay_cache import MemoryReplayCache
from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces
from mcp_auth_kit.rfc9449_dpop_proofs import DPoPError, DPoPProofVerifier, access_token_hash, single_proof

from .conftest import serve

TOKEN = "an-access-token"


@dataclass
class ProofCheckingServer:
    """`/token` answers like an authorization server (400), `/resource` like a resource server (401)."""

    url: str = ""
    nonces: DPoPNonces = field(default_factory=lambda: DPoPNonces(b"k" * 32, context="test"))
    demand_nonce: bool = True
    rotate_every_response: bool = False
    bound_jkt: str | None = None  # the key the resource's access token is bound to
    seen: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            headers = dict(request.headers)
            self.seen.append(headers)
            resource = request.url.path == "/resource"
            if self.rotate_every_response:  # a server whose nonce is never the one the client holds
                self.nonces = DPoPNonces(bytes([len(self.seen)]) * 32, context="test")
            verifier = DPoPProofVerifier(
                replay=MemoryReplayCache(),
                replay_namespace="test",
                nonces=self.nonces if self.demand_nonce else None,
            )
            try:
                proof = single_proof(request.headers.getlist("dpop"))
                assert proof is not None
                await verifier.verify(
                    proof,
                    method=request.method,
                    url=f"{self.url}{request.url.path}",
                    access_token=TOKEN if resource else None,
                    bound_jkt=self.bound_jkt,
                )
            except DPoPError as exc:
                nonce = {"DPoP-Nonce": self.nonces.current()}
                if resource:
                    challenge = f'DPoP error="{exc.error}", algs="ES256"'
                    return Response(status_code=401, headers={"WWW-Authenticate": challenge, **nonce})
                return JSONResponse({"error": exc.error}, status_code=400, headers=nonce)
            return JSONResponse({"ok": True}, headers={"DPoP-Nonce": self.nonces.current()})

        return Starlette(
            routes=[Route(path, endpoint, methods=["GET", "POST"]) for path in ("/token", "/resource")]
        )


@pytest.fixture
async def server() -> AsyncIterator[ProofCheckingServer]:
    standin = ProofCheckingServer()
    async with serve(standin.app()) as url:
        standin.url = url
        yield standin


def bound_auth(server: ProofCheckingServer) -> DPoPAuth:
    """A client whose access token the server takes as bound to the client's key."""
    auth = DPoPAuth(DPoPKey.generate(), access_token=TOKEN)
    server.bound_jkt = auth.key.jkt
    return auth


def claims(proof: str) -> dict[str, object]:
    return dict(jwt.decode(proof, options={"verify_signature": False}))


def test_a_saved_key_loads_with_the_same_thumbprint() -> None:
    for algorithm in ("ES256", "ES384", "PS256", "EdDSA"):
        key = DPoPKey.generate(algorithm)
        loaded = DPoPKey.from_pem(key.private_key_pem())
        assert (loaded.jkt, loaded.algorithm) == (key.jkt, algorithm)
    key = DPoPKey.generate()
    assert DPoPKey.from_pem(key.private_key_pem(b"pass"), b"pass").jkt == key.jkt
    with pytest.raises(ValueError, match="unsupported"):
        DPoPKey.generate("HS256")


def test_a_proof_names_the_request_without_query_and_hashes_the_token() -> None:
    key = DPoPKey.generate()
    proof = claims(key.proof("GET", "https://rs.example.com/mcp?x=1#f", access_token=TOKEN, nonce="n1"))
    assert proof["htm"] == "GET"
    assert proof["htu"] == "https://rs.example.com/mcp"
    assert proof["ath"] == access_token_hash(TOKEN)
    assert proof["nonce"] == "n1"
    header = jwt.get_unverified_header(key.proof("GET", "https://rs.example.com/mcp"))
    assert header["typ"] == "dpop+jwt"
    assert "d" not in header["jwk"]


async def test_a_token_request_retries_once_with_the_authorization_servers_nonce(
    server: ProofCheckingServer,
) -> None:
    auth = DPoPAuth(DPoPKey.generate())
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/token", data={"grant_type": "x"}, auth=auth)
    assert response.status_code == 200, response.text
    first, second = (claims(headers["dpop"]) for headers in server.seen)
    assert "nonce" not in first
    assert second["nonce"] == server.nonces.current()
    assert first["jti"] != second["jti"]
    assert "authorization" not in server.seen[1]  # no access token yet: the proof alone


async def test_a_resource_request_retries_once_with_the_resource_servers_nonce(
    server: ProofCheckingServer,
) -> None:
    auth = bound_auth(server)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/resource", auth=auth)
    assert response.status_code == 200, response.text
    assert [headers["authorization"] for headers in server.seen] == [f"DPoP {TOKEN}"] * 2
    assert claims(server.seen[1]["dpop"])["nonce"] == server.nonces.current()


async def test_a_nonce_sent_with_a_success_is_used_next_time_without_a_round_trip(
    server: ProofCheckingServer,
) -> None:
    auth = bound_auth(server)
    async with httpx.AsyncClient() as http:
        await http.get(f"{server.url}/resource", auth=auth)
        del server.seen[:]
        for _ in range(3):
            assert (await http.post(f"{server.url}/resource", auth=auth)).status_code == 200
    assert len(server.seen) == 3


async def test_the_client_gives_up_after_one_retry(server: ProofCheckingServer) -> None:
    server.rotate_every_response = True
    auth = DPoPAuth(DPoPKey.generate())
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/token", auth=auth)
    assert response.status_code == 400
    assert len(server.seen) == 2


async def test_a_request_with_its_own_credentials_keeps_them(server: ProofCheckingServer) -> None:
    server.demand_nonce = False
    auth = DPoPAuth(DPoPKey.generate(), access_token=TOKEN)
    async with httpx.AsyncClient() as http:
        await http.post(
            f"{server.url}/token", auth=auth, headers={"Authorization": "Basic Y2xpZW50OnNlY3JldA=="}
        )
    assert server.seen[0]["authorization"] == "Basic Y2xpZW50OnNlY3JldA=="
    assert "ath" not in claims(server.seen[0]["dpop"])


async def test_the_httpx2_twin_shares_key_token_and_nonces(server: ProofCheckingServer) -> None:
    auth = bound_auth(server)
    async with httpx.AsyncClient() as http:
        await http.get(f"{server.url}/resource", auth=auth)  # learns the nonce
    del server.seen[:]
    auth.access_token = TOKEN
    async with httpx2.AsyncClient(auth=auth.for_httpx2()) as http2:
        assert (await http2.get(f"{server.url}/resource")).status_code == 200
    assert len(server.seen) == 1


async def test_the_sync_client_works_too(server: ProofCheckingServer) -> None:
    def call() -> int:
        with httpx.Client() as http:
            return http.post(f"{server.url}/token", auth=DPoPAuth(DPoPKey.generate())).status_code

    assert await asyncio.to_thread(call) == 200
    assert len(server.seen) == 2
