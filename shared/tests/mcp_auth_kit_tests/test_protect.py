"""`protect()` end to end: the SDK's own client through the guard, metadata, health, DNS-rebinding checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.settings import AuthSettings as SDKAuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent

from mcp_auth_kit import protect

from .conftest import IssuerStandIn, Served, modern_call, notes_server, raw_post, serve_protected, tool_call

TokenFor = Callable[..., str]


def text(result: object) -> str:
    content = getattr(result, "content", [])
    assert isinstance(content[0], TextContent)
    return content[0].text


@asynccontextmanager
async def sdk_client(served: Served, token: str, mode: str) -> AsyncIterator[Client]:
    """The `mcp` SDK's client on streamable HTTP, sending a static bearer token."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        transport = streamable_http_client(served.resource_url, http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_calls_tools_as_the_signed_in_user(
    served: Served, token_for: TokenFor, mode: str
) -> None:
    async with sdk_client(served, token_for(served), mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        # The claims reach the tool through the SDK's auth context.
        whoami = text(await client.call_tool("whoami"))
    assert names == {"list_notes", "delete_notes", "whoami"}
    assert whoami == "octocat"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_sees_the_step_up_refusal(served: Served, token_for: TokenFor, mode: str) -> None:
    async with sdk_client(served, token_for(served), mode) as client:
        with pytest.raises(MCPError):
            await client.call_tool("delete_notes")
    assert served.notes.executed == []


async def test_protected_resource_metadata_documents(served: Served) -> None:
    async with httpx.AsyncClient() as client:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            response = await client.get(served.url + path, headers={"Origin": "https://inspector.example"})
            assert response.status_code == 200
            assert response.json() == {
                "resource": served.resource_url,
                "authorization_servers": [served.issuer],
                "scopes_supported": ["mcp:tools", "notes:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Notes",
                # RFC 9449 is on by default: DPoP-bound tokens are accepted beside bearer tokens.
                "dpop_signing_alg_values_supported": ["ES256", "ES384", "PS256", "RS256", "EdDSA"],
                "dpop_bound_access_tokens_required": False,
            }
            assert response.headers["access-control-allow-origin"] == "*"


async def test_sse_has_its_own_metadata_whose_resource_is_the_sse_url(served: Served) -> None:
    """Finding 3 of issue 14: /sse pointed at /mcp's metadata, which RFC 9728 §3.3 clients must refuse."""
    sse_url = served.url + "/sse"
    async with httpx.AsyncClient() as client:
        challenge = (await client.get(sse_url)).headers["www-authenticate"]
        document = (await client.get(served.url + "/.well-known/oauth-protected-resource/sse")).json()
        root = (await client.get(served.url + "/.well-known/oauth-protected-resource")).json()
    assert f'resource_metadata="{served.url}/.well-known/oauth-protected-resource/sse"' in challenge
    assert document["resource"] == sse_url
    assert document["authorization_servers"] == [served.issuer]
    assert root["resource"] == served.resource_url  # one origin, one root document: the main resource's


async def test_optional_whitespace_around_mcp_header_values_is_not_a_mismatch(
    served: Served, token_for: TokenFor
) -> None:
    """Finding 5 of issue 14 (RFC 9110 §5.5): `Mcp-Name:   list_notes  ` names list_notes."""
    headers, body = modern_call("list_notes", header_name="  list_notes\t ")
    headers = {**headers, "Mcp-Method": " tools/call ", "Authorization": f"Bearer {token_for(served)}"}
    status, answer = await raw_post(served.resource_url, headers, body)
    assert status == 200, answer
    assert served.notes.executed == ["list_notes"]


async def test_whitespace_cannot_smuggle_a_tool_past_its_scope(served: Served, token_for: TokenFor) -> None:
    headers, body = modern_call("delete_notes", header_name=" delete_notes ")
    headers = {**headers, "Authorization": f"Bearer {token_for(served)}"}
    status, _ = await raw_post(served.resource_url, headers, body)
    assert status == 403  # the guard read the trimmed name: step-up, not a header mismatch
    assert served.notes.executed == []


@pytest.mark.parametrize("server", [object(), "Notes", FastAPI()], ids=["object", "str", "fastapi"])
def test_anything_but_an_mcp_server_is_a_type_error_naming_what_is_accepted(server: object) -> None:
    with pytest.raises(TypeError) as refused:
        protect(server, resource_url="http://127.0.0.1:9/mcp", issuer="http://127.0.0.1:1")  # type: ignore[arg-type]
    message = str(refused.value)
    assert "mcp.server.mcpserver.MCPServer" in message
    assert "fastmcp.FastMCP" in message
    assert type(server).__qualname__ in message


async def test_scopes_supported_never_lists_offline_access(issuer: IssuerStandIn) -> None:
    supported = ["mcp:tools", "offline_access"]
    async with (
        serve_protected(issuer.url, scopes_supported=supported) as served,
        httpx.AsyncClient() as client,
    ):
        document = (await client.get(served.metadata_url)).json()
    assert document["scopes_supported"] == ["mcp:tools"]


async def test_health_and_readiness(served: Served) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{served.url}/healthz")).json() == {"status": "ok"}
        assert (await client.get(f"{served.url}/readyz")).status_code == 200


async def test_not_ready_until_the_keys_are_loaded(issuer: IssuerStandIn) -> None:
    issuer.down = True
    async with serve_protected(issuer.url) as served, httpx.AsyncClient() as client:
        assert (await client.get(f"{served.url}/readyz")).status_code == 503
        assert (await client.get(f"{served.url}/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("Host", "evil.example", 421),
        ("Host", "localhost:{port}", 421),
        ("Origin", "http://evil.example", 403),
    ],
)
async def test_dns_rebinding_is_refused(
    served: Served, token_for: TokenFor, header: str, value: str, status: int
) -> None:
    port = served.resource_url.split(":")[2].split("/")[0]
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token_for(served)}",
        header: value.format(port=port),
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)
    assert response.status_code == status
    assert served.notes.executed == []


async def test_auth_off_serves_the_same_tools_to_anyone(issuer: IssuerStandIn) -> None:
    async with serve_protected(issuer.url, auth=False) as served, httpx.AsyncClient() as client:
        response = await client.post(
            served.resource_url,
            json=tool_call("delete_notes"),
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert response.status_code == 200
        assert (await client.get(served.metadata_url)).status_code == 404
        assert (await client.get(f"{served.url}/readyz")).status_code == 200


async def test_a_tool_scope_for_an_unknown_tool_stops_start_up() -> None:
    app = protect(
        notes_server().mcp,
        resource_url="http://127.0.0.1:9/mcp",
        issuer="http://127.0.0.1:1",
        tool_scopes={"delete_note": ["notes:admin"]},  # typo: the tool is delete_notes
    )
    with pytest.raises(RuntimeError, match="unknown tools: delete_note"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize(
    "resource_url",
    [
        "http://127.0.0.1:9101",
        "http://127.0.0.1:9101/",
        "http://127.0.0.1:9101/mcp/",
        "http://127.0.0.1:9101/sse",
        "ftp://h/mcp",
        "http://h/mcp?x=1",
        "http://u@h/mcp",
        "/mcp",
    ],
)
def test_resource_url_must_be_absolute_with_a_path(resource_url: str) -> None:
    with pytest.raises(ValueError, match="resource_url"):
        protect(MCPServer("x"), resource_url=resource_url, issuer="http://127.0.0.1:1")


@pytest.mark.parametrize("scope", ["two words", 'quote"d', "back\\slash", ""])
def test_scopes_must_be_rfc6749_scope_tokens(scope: str) -> None:
    with pytest.raises(ValueError, match="scope-token"):
        protect(MCPServer("x"), resource_url="http://127.0.0.1:9/mcp", issuer="http://i", scopes=[scope])


def test_sdk_auth_settings_are_refused() -> None:
    class NoTokens:
        async def verify_token(self, token: str) -> None:
            return None

    settings = SDKAuthSettings(
        issuer_url="http://127.0.0.1:1",
        resource_server_url="http://127.0.0.1:9/mcp",
        validate_token_resource=True,
    )
    server = MCPServer("x", auth=settings, token_verifier=NoTokens())
    with pytest.raises(ValueError, match="protect"):
        protect(server, resource_url="http://127.0.0.1:9/mcp", issuer="http://127.0.0.1:1")
