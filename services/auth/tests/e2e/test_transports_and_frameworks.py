"""Issue 14 against the real auth service: /sse reachable by OAuth clients, and FastMCP like the SDK.

`mcp-auth serve` (dev upstream, Postgres) knows each server's /sse URL as an alias of its resource, so
the SDK's SSE client, which discovers …/sse's own RFC 9728 metadata, gets the same consent and a token
whose audience is …/mcp, and that token works on both transports. A FastMCP server protected by the
kit is driven by the SDK's OAuth client and by FastMCP's own client, with introspection on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp import FastMCP

from mcp_auth_kit import Introspection, protect
from mcp_testing.background_server import BackgroundServer
from mcp_testing.processes import ServiceProcess, free_port, venv_script

from ..auth_process import DevAuthService, dev_auth_service
from .sdk_client import MemoryStorage, Person, oauth_mcp_client, oauth_sse_client


@dataclass
class Servers:
    auth: DevAuthService
    tools: str  # mcp-tools serve (the SDK's MCPServer behind protect())
    fast: str  # a FastMCP server behind protect(), with introspection
    machine: dict[str, str]


def resource_entry(resource: str, name: str) -> dict[str, object]:
    return {
        "resource": resource,
        "scopes": ["mcp:tools"],
        "name": name,
        "aliases": [resource.replace("/mcp", "/sse")],
        "scope_descriptions": {"mcp:tools": f"use the tools of {name}"},
    }


@pytest.fixture(scope="module")
def servers(migrated_database: str) -> Iterator[Servers]:
    tools_port, fast_port = free_port(), free_port()
    tools, fast = (f"http://127.0.0.1:{port}/mcp" for port in (tools_port, fast_port))
    entries = [resource_entry(tools, "Tools"), resource_entry(fast, "FastMCP notes")]
    with dev_auth_service(migrated_database, entries) as auth:
        fast_client = auth.cli("clients", "add", "--name", "fast", "--resource-server", fast)
        machine = auth.cli(
            "clients", "add", "--name", "CI", "--machine", "--scope", "mcp:tools", "--resource", fast,
        )  # fmt: skip
        server = FastMCP("FastMCP notes")

        @server.tool
        def ping() -> str:
            """Answer pong."""
            return "pong"

        app = protect(
            server,
            resource_url=fast,
            issuer=auth.issuer,
            scopes=["mcp:tools"],
            introspection=Introspection(fast_client["client_id"], fast_client["client_secret"], cache_ttl=1),
        )
        env = {"MCP_RESOURCE_URL": tools, "MCP_AUTH_ISSUER": auth.issuer}
        with (
            ServiceProcess([venv_script("mcp-tools"), "serve"], port=tools_port, env=env),
            BackgroundServer(app, port=fast_port, lifespan="on"),
        ):
            yield Servers(auth, tools, fast, machine)


async def test_sdk_sse_client_signs_in_through_sse_and_its_token_works_on_both_transports(
    servers: Servers,
) -> None:
    sse_url = servers.tools.replace("/mcp", "/sse")
    storage = MemoryStorage()
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http, username="sse-user")
        async with oauth_sse_client(sse_url, person, storage) as client:
            who = await client.call_tool("get_user_info", {})
        assert not who.is_error, who
        assert "sse-user" in str(who.content)
        assert len(person.pages_seen) == 1
        assert "use the tools of Tools" in person.pages_seen[0]  # the operator's words for the scope
        assert storage.tokens is not None
        token = storage.tokens.access_token
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == servers.tools
        # One consent, one audience: the same token on streamable HTTP, no second sign-in.
        async with oauth_mcp_client(servers.tools, person, storage) as client:
            again = await client.call_tool("get_user_info", {})
        assert not again.is_error
        assert len(person.pages_seen) == 1


async def test_sdk_oauth_client_and_fastmcp_client_call_a_fastmcp_server(servers: Servers) -> None:
    storage = MemoryStorage()
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http, username="fast-user")
        async with oauth_mcp_client(servers.fast, person, storage) as client:
            pong = await client.call_tool("ping", {})
    assert not pong.is_error
    assert storage.tokens is not None
    async with FastMCPClient(servers.fast, auth=storage.tokens.access_token) as fast_client:
        assert (await fast_client.call_tool("ping", {})).data == "pong"


async def test_a_fastmcp_server_refuses_a_revoked_token_through_introspection(servers: Servers) -> None:
    token = servers.auth.machine_token(servers.machine, servers.fast)
    async with FastMCPClient(servers.fast, auth=token) as fast_client:
        assert (await fast_client.call_tool("ping", {})).data == "pong"
    revoked = httpx.post(
        f"{servers.auth.issuer}/revoke",
        data={"token": token},
        auth=(servers.machine["client_id"], servers.machine["client_secret"]),
        trust_env=False,
    )
    assert revoked.status_code == 200
    for _ in range(40):  # the introspection cache is 1 s here
        response = httpx.post(
            servers.fast,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
            trust_env=False,
        )
        if response.status_code == 401:
            break
        time.sleep(0.1)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_for_the_tools_server_is_refused_by_the_fastmcp_server(servers: Servers) -> None:
    machine = servers.auth.cli(
        "clients", "add", "--name", "tools-only", "--machine", "--scope", "mcp:tools",
        "--resource", servers.tools,
    )  # fmt: skip
    token = servers.auth.machine_token(machine, servers.tools)
    response = httpx.post(
        servers.fast,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        trust_env=False,
    )
    assert response.status_code == 401
