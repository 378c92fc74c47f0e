"""Finding 1 of issue 14: FastMCP servers get exactly the kit's behaviour (FastMCP 4.2, its own client too).

Reproduced first: `protect(fastmcp.FastMCP(...))` failed with AttributeError ('settings'), and a
FastMCP `TokenVerifier` around `JWTVerifier` served FastMCP's own challenges and no root metadata.
The differential test below sends the same requests to an SDK server and a FastMCP server, both
protected by the kit, and expects the same answers byte for byte (URLs aside).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_access_token
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_auth_kit import UpstreamTokenClient, protect
from mcp_auth_kit.fastmcp_auth import KitAuthProvider

from .conftest import (
    LEGACY_HEADERS,
    NOTES_SCOPES,
    IssuerStandIn,
    Signer,
    claims_for,
    modern_call,
    raw_post,
    serve,
    serve_protected,
    sign,
    tool_call,
    unused_port,
)
from .test_start_up import lifespan_startup

TokenFor = Callable[..., str]


@dataclass
class FastNotes:
    server: FastMCP[Any]
    executed: list[str] = field(default_factory=list)


def fastmcp_notes(upstream: UpstreamTokenClient | None = None) -> FastNotes:
    notes = FastNotes(FastMCP("kit-tests"))

    @notes.server.tool
    def list_notes() -> str:
        """List notes."""
        notes.executed.append("list_notes")
        return "no notes"

    @notes.server.tool
    def delete_notes() -> str:
        """Delete every note (needs notes:admin)."""
        notes.executed.append("delete_notes")
        return "deleted"

    @notes.server.tool
    def whoami() -> str:
        """The caller's username, read from the verified token's claims (FastMCP's own accessor)."""
        token = get_access_token()
        return str(token.claims.get("preferred_username")) if token else "anonymous"

    @notes.server.tool
    async def upstream_token() -> str:
        """The user's upstream token, by RFC 8693 exchange for the current request's user."""
        assert upstream is not None
        return await upstream.token_for("github")

    return notes


@dataclass
class ServedFast:
    url: str
    resource_url: str
    notes: FastNotes


@asynccontextmanager
async def serve_fastmcp(
    issuer_url: str, notes: FastNotes | None = None, **options: Any
) -> AsyncIterator[ServedFast]:
    notes = notes or fastmcp_notes()
    port = unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    app = protect(notes.server, resource_url=resource, issuer=issuer_url, **{**NOTES_SCOPES, **options})
    async with serve(app, port) as url:
        yield ServedFast(url, resource, notes)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Each case: (method, path, headers, JSON body); {token} and {foreign} are filled in per server.
WITH_TOKEN = {**LEGACY_HEADERS, "Authorization": "Bearer {token}"}
CASES: dict[str, tuple[str, str, dict[str, str], Any]] = {
    "no token": ("POST", "/mcp", LEGACY_HEADERS, tool_call("list_notes")),
    "garbage token": ("POST", "/mcp", {**WITH_TOKEN, "Authorization": "Bearer abc.def.ghi"}, tool_call("x")),
    "basic scheme": ("POST", "/mcp", {**WITH_TOKEN, "Authorization": "Basic Zm9vOmJhcg=="}, tool_call("x")),
    "another audience": ("POST", "/mcp", {**WITH_TOKEN, "Authorization": "Bearer {foreign}"}, tool_call("x")),
    "step-up from the body": ("POST", "/mcp", WITH_TOKEN, tool_call("delete_notes")),
    "step-up from routing headers": (
        "POST", "/mcp", {**modern_call("delete_notes")[0], "Authorization": "Bearer {token}"},
        modern_call("delete_notes")[1],
    ),
    "allowed call": ("POST", "/mcp", WITH_TOKEN, tool_call("list_notes")),
    "sse without a token": ("GET", "/sse", {}, None),
    "metadata": ("GET", "/.well-known/oauth-protected-resource/mcp", {}, None),
    "root metadata": ("GET", "/.well-known/oauth-protected-resource", {}, None),
    "sse metadata": ("GET", "/.well-known/oauth-protected-resource/sse", {}, None),
    "readiness": ("GET", "/readyz", {}, None),
    "rebinding": (
        "POST", "/mcp", {**WITH_TOKEN, "Host": "evil.example"}, tool_call("list_notes"),
    ),
}  # fmt: skip


async def answer(base: str, resource: str, case: str, token: str, foreign: str) -> tuple[int, str, Any]:
    method, path, headers, body = CASES[case]
    filled = {name: value.format(token=token, foreign=foreign) for name, value in headers.items()}
    async with httpx.AsyncClient() as client:
        response = await client.request(method, base + path, headers=filled, json=body)
    challenge = response.headers.get("www-authenticate", "").replace(base, "BASE")
    try:
        payload: Any = json.loads(response.text.replace(base, "BASE"))
    except ValueError:
        payload = response.text
    if case == "allowed call":
        payload = payload["result"]["content"][0]["text"]
    return response.status_code, challenge, payload


@pytest.mark.parametrize("case", list(CASES))
async def test_fastmcp_answers_exactly_like_an_sdk_server(
    issuer: IssuerStandIn, es256: Signer, case: str
) -> None:
    async with serve_protected(issuer.url) as sdk, serve_fastmcp(issuer.url) as fast:
        answers = []
        for base, resource in ((sdk.url, sdk.resource_url), (fast.url, fast.resource_url)):
            token = sign(es256, claims_for(issuer.url, resource))
            foreign = sign(es256, claims_for(issuer.url, "http://127.0.0.1:1/mcp"))
            answers.append(await answer(base, resource, case, token, foreign))
    assert answers[0] == answers[1]
    assert answers[0][0] in {200, 400, 401, 403, 421}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_fastmcp_client_calls_tools_as_the_signed_in_user(
    issuer: IssuerStandIn, es256: Signer, mode: str
) -> None:
    async with serve_fastmcp(issuer.url) as fast:
        token = sign(es256, claims_for(issuer.url, fast.resource_url))
        async with FastMCPClient(fast.resource_url, auth=token, mode=mode) as client:
            names = {tool.name for tool in await client.list_tools()}
            whoami = await client.call_tool("whoami", {})
            with pytest.raises((ToolError, MCPError)):  # 403 step-up: the client needs notes:admin
                await client.call_tool("delete_notes", {})
    assert {"list_notes", "delete_notes", "whoami"} <= names
    assert whoami.data == "octocat"
    assert fast.notes.executed == []


async def test_sdk_client_calls_a_fastmcp_server(issuer: IssuerStandIn, es256: Signer) -> None:
    async with serve_fastmcp(issuer.url) as fast:
        token = sign(es256, claims_for(issuer.url, fast.resource_url, scope="mcp:tools notes:admin"))
        async with (
            httpx2.AsyncClient(headers=bearer(token)) as http,
            Client(streamable_http_client(fast.resource_url, http_client=http)) as client,
        ):
            result = await client.call_tool("delete_notes", {})
    assert not result.is_error
    assert fast.notes.executed == ["delete_notes"]


async def test_whitespace_around_mcp_name_reaches_fastmcp_trimmed(
    issuer: IssuerStandIn, es256: Signer
) -> None:
    async with serve_fastmcp(issuer.url) as fast:
        token = sign(es256, claims_for(issuer.url, fast.resource_url))
        headers, body = modern_call("list_notes", header_name="  list_notes  ")
        status, _ = await raw_post(fast.resource_url, {**headers, **bearer(token)}, body)
    assert status == 200
    assert fast.notes.executed == ["list_notes"]


async def test_fastmcp_tools_exchange_the_users_token_upstream(issuer: IssuerStandIn, es256: Signer) -> None:
    issuer.exchange_answer = (200, {"access_token": "gho_upstream", "expires_in": 600})
    upstream = UpstreamTokenClient(issuer=issuer.url, client_id="mcp-fast", client_secret="s3cret")
    async with serve_fastmcp(issuer.url, fastmcp_notes(upstream)) as fast:
        token = sign(es256, claims_for(issuer.url, fast.resource_url))
        async with FastMCPClient(fast.resource_url, auth=token) as client:
            result = await client.call_tool("upstream_token", {})
    await upstream.aclose()
    assert result.data == "gho_upstream"
    form, _ = issuer.exchange_requests[0]
    assert form["subject_token"] == token  # the current request's user, through the guard's context


async def test_fastmcp_with_a_wrong_issuer_stops_start_up(issuer: IssuerStandIn) -> None:
    app = protect(fastmcp_notes().server, resource_url="http://127.0.0.1:9/mcp", issuer=issuer.url + "/")
    message = await lifespan_startup(app)
    assert message["type"] == "lifespan.startup.failed"
    assert message["message"].startswith(f"issuer mismatch: configured '{issuer.url}/'")


async def test_the_provider_alone_protects_fastmcps_own_app(issuer: IssuerStandIn, es256: Signer) -> None:
    port = unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    server = fastmcp_notes().server
    server.auth = KitAuthProvider(resource_url=resource, issuer=issuer.url, scopes=["mcp:tools"])
    async with serve(server.http_app(path="/mcp", stateless_http=True), port) as url:
        async with httpx.AsyncClient() as client:
            refused = await client.post(resource, json=tool_call("list_notes"), headers=LEGACY_HEADERS)
            root = await client.get(f"{url}/.well-known/oauth-protected-resource")
        token = sign(es256, claims_for(issuer.url, resource))
        async with FastMCPClient(resource, auth=token) as fast_client:
            listed = await fast_client.call_tool("list_notes", {})
    metadata = f"{url}/.well-known/oauth-protected-resource/mcp"
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata}", scope="mcp:tools"'
    assert root.json()["resource"] == resource
    assert listed.data == "no notes"


def test_the_provider_refuses_to_serve_another_path_than_its_resource(issuer: IssuerStandIn) -> None:
    server = fastmcp_notes().server
    server.auth = KitAuthProvider(resource_url="http://127.0.0.1:9/mcp", issuer=issuer.url)
    with pytest.raises(ValueError, match="serve it at '/mcp'"):
        server.http_app(path="/other")


def test_fastmcp_auth_and_protect_are_not_combined(issuer: IssuerStandIn) -> None:
    server = fastmcp_notes().server
    server.auth = KitAuthProvider(resource_url="http://127.0.0.1:9/mcp", issuer=issuer.url)
    with pytest.raises(ValueError, match="protect"):
        protect(server, resource_url="http://127.0.0.1:9/mcp", issuer=issuer.url)
