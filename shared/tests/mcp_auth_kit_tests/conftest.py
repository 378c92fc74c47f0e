"""Real keys, a real HTTP stand-in for the auth service, and a way to serve any ASGI app over loopback."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

RESOURCE_PATH = "/mcp"


@asynccontextmanager
async def serve(app: ASGIApp, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) with uvicorn on this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Signer:
    """A private key with its kid and algorithm, and the public JWK the auth service would publish."""

    kid: str
    alg: str
    private_key: Any

    @property
    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def make_signer(alg: str, kid: str | None = None) -> Signer:
    key: Any
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg in ("RS256", "PS256"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return Signer(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, key)


@pytest.fixture(scope="session")
def es256() -> Signer:
    return make_signer("ES256", "es256-key")


@pytest.fixture(scope="session")
def rs256() -> Signer:
    return make_signer("RS256", "rs256-key")


@pytest.fixture(scope="session")
def eddsa() -> Signer:
    return make_signer("EdDSA", "eddsa-key")


@dataclass
class IssuerStandIn:
    """The auth service as the kit sees it: RFC 8414 metadata, a JWKS, and a token-exchange endpoint."""

    url: str = ""
    signers: list[Signer] = field(default_factory=list)
    cache_control: str | None = "public, max-age=300"
    down: bool = False
    metadata_hits: int = 0
    jwks_hits: int = 0
    exchange_requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    exchange_answer: tuple[int, dict[str, Any]] = (200, {})

    def reset(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.cache_control = "public, max-age=300"
        self.down = False
        self.metadata_hits = self.jwks_hits = 0
        self.exchange_requests = []
        self.exchange_answer = (200, {})

    def app(self) -> Starlette:
        async def metadata(_: Request) -> Response:
            self.metadata_hits += 1
            if self.down:
                return Response(status_code=503)
            return JSONResponse(
                {
                    "issuer": self.url,
                    "jwks_uri": f"{self.url}/jwks.json",
                    "token_endpoint": f"{self.url}/token",
                }
            )

        async def jwks(_: Request) -> Response:
            self.jwks_hits += 1
            if self.down:
                return Response(status_code=503)
            headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
            return JSONResponse({"keys": [signer.jwk for signer in self.signers]}, headers=headers)

        async def token(request: Request) -> Response:
            form = {key: str(value) for key, value in (await request.form()).items()}
            self.exchange_requests.append((form, request.headers.get("authorization", "")))
            status, body = self.exchange_answer
            return JSONResponse(body, status_code=status)

        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", metadata),
                Route("/jwks.json", jwks),
                Route("/token", token, methods=["POST"]),
            ]
        )


@pytest_asyncio.fixture(scope="session")
async def issuer_server() -> AsyncIterator[IssuerStandIn]:
    standin = IssuerStandIn()
    async with serve(standin.app()) as url:
        standin.url = url
        yield standin


@pytest.fixture
def issuer(issuer_server: IssuerStandIn, es256: Signer, rs256: Signer, eddsa: Signer) -> IssuerStandIn:
    """The stand-in, publishing the three test keys, with its counters and switches reset."""
    issuer_server.reset(es256, rs256, eddsa)
    return issuer_server


def resource_url(base: str = "http://127.0.0.1:9101") -> str:
    return base + RESOURCE_PATH


def claims_for(issuer_url: str, audience: str, **overrides: Any) -> dict[str, Any]:
    """RFC 9068 claims as the auth service issues them; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer_url,
        "sub": "user-1",
        "aud": audience,
        "client_id": "client-1",
        "scope": "mcp:tools",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "auth_time": now,
        "preferred_username": "octocat",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def sign(signer: Signer, claims: dict[str, Any], **header: Any) -> str:
    """A JWS by PyJWT with the auth service's header; header overrides of None remove the parameter."""
    headers = {"typ": "at+jwt", "kid": signer.kid, **header}
    return jwt.encode(
        claims,
        signer.private_key,
        algorithm=signer.alg,
        headers={k: v for k, v in headers.items() if v is not None},
    )


Mint = Callable[..., str]


@pytest.fixture
def mint(issuer: IssuerStandIn, es256: Signer) -> Mint:
    """mint(signer=es256, header=None, audience=RESOURCE, **claim_overrides) -> a signed access token."""

    def mint_token(
        signer: Signer | None = None,
        header: dict[str, Any] | None = None,
        audience: str | None = None,
        **claims: Any,
    ) -> str:
        body = claims_for(issuer.url, audience or resource_url(), **claims)
        return sign(signer or es256, body, **(header or {}))

    return mint_token


@dataclass
class NotesServer:
    """A small MCP server: a public tool, a step-up tool, and a tool that reports who called it."""

    mcp: MCPServer
    executed: list[str]


def notes_server() -> NotesServer:
    from mcp.server.auth.middleware.auth_context import get_access_token

    notes = NotesServer(MCPServer("kit-tests"), [])

    @notes.mcp.tool()
    def list_notes() -> str:
        """List notes."""
        notes.executed.append("list_notes")
        return "no notes"

    @notes.mcp.tool()
    def delete_notes() -> str:
        """Delete every note (needs notes:admin)."""
        notes.executed.append("delete_notes")
        return "deleted"

    @notes.mcp.tool()
    def whoami() -> str:
        """The caller's username, read from the verified token's claims."""
        token = get_access_token()
        return str((token.claims or {}).get("preferred_username")) if token else "anonymous"

    return notes


@dataclass
class Served:
    """A `protect()`ed notes server listening on loopback."""

    url: str
    resource_url: str
    issuer: str
    notes: NotesServer

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/oauth-protected-resource/mcp"


NOTES_SCOPES = {
    "scopes": ["mcp:tools"],
    "tool_scopes": {"delete_notes": ["notes:admin"]},
    "resource_name": "Notes",
}


@asynccontextmanager
async def serve_protected(issuer_url: str, **options: Any) -> AsyncIterator[Served]:
    """`protect()` a fresh notes server (options override NOTES_SCOPES) and serve it on its resource URL."""
    from mcp_auth_kit import protect

    notes = notes_server()
    port = unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    app = protect(notes.mcp, resource_url=resource, issuer=issuer_url, **{**NOTES_SCOPES, **options})
    async with serve(app, port) as url:
        yield Served(url, resource, issuer_url, notes)


@pytest_asyncio.fixture
async def served(issuer: IssuerStandIn) -> AsyncIterator[Served]:
    async with serve_protected(issuer.url) as running:
        yield running


@pytest.fixture
def token_for(issuer: IssuerStandIn, es256: Signer) -> Callable[..., str]:
    """token_for(served, scope="mcp:tools", **claims) -> an ES256 access token for that server."""

    def make(target: Served, scope: str = "mcp:tools", **claims: Any) -> str:
        return sign(es256, claims_for(issuer.url, target.resource_url, scope=scope, **claims))

    return make


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def tool_call(name: str, request_id: int = 1) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": {}}, request_id)


LEGACY_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


def modern_call(name: str, header_name: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """A 2026-07-28 tools/call: routing headers (Mcp-Name defaults to `name`) and the enveloped body."""
    from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY

    headers = {
        **LEGACY_HEADERS,
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": header_name or name,
    }
    meta = {PROTOCOL_VERSION_META_KEY: "2026-07-28", CLIENT_CAPABILITIES_META_KEY: {}}
    return headers, rpc("tools/call", {"name": name, "arguments": {}, "_meta": meta})


async def raw_post(url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, bytes]:
    """POST over a bare socket: HTTP clients refuse to send the header whitespace real clients send."""
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(payload)}"]
    head += [f"{name}: {value}" for name, value in headers.items()] + ["Connection: close", "", ""]
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write("\r\n".join(head).encode("latin-1") + payload)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
