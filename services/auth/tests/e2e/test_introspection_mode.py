"""The kit's introspection mode against the real auth service: revocation bites before the token expires.

`mcp-auth serve` runs as a process; a kit-protected server runs in this process (with a 1-second
cache, so the test need not wait out the default 15 s) and `mcp-tools serve` runs with
MCP_INTROSPECTION=on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from mcp_auth_kit import Introspection, protect
from mcp_testing.background_server import BackgroundServer
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.processes import ServiceProcess, free_port, venv_script

from ..auth_process import DevAuthService, dev_auth_service, tools_resources
from ..flow import CALLBACK, new_request, query

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


@dataclass
class Setup:
    auth: DevAuthService
    kit_resource: str  # served in this process, introspection cache 1 s
    tools_resource: str  # `mcp-tools serve` with MCP_INTROSPECTION=on
    machine: dict[str, Any]


@pytest.fixture(scope="module")
def setup(migrated_database: str) -> Iterator[Setup]:
    kit_port, tools_port = free_port(), free_port()
    kit_resource, tools_resource = (f"http://127.0.0.1:{port}/mcp" for port in (kit_port, tools_port))
    with dev_auth_service(migrated_database, tools_resources(kit_resource, tools_resource)) as auth:
        kit_client = auth.cli("clients", "add", "--name", "kit", "--resource-server", kit_resource)
        tools_client = auth.cli("clients", "add", "--name", "tools", "--resource-server", tools_resource)
        machine = auth.cli(
            "clients", "add", "--name", "CI", "--machine", "--scope", "mcp:tools",
            "--resource", kit_resource, "--resource", tools_resource,
        )  # fmt: skip
        notes = MCPServer("notes")

        @notes.tool()
        def ping() -> str:
            """Answer pong."""
            return "pong"

        app = protect(
            notes,
            resource_url=kit_resource,
            issuer=auth.issuer,
            scopes=["mcp:tools"],
            introspection=Introspection(kit_client["client_id"], kit_client["client_secret"], cache_ttl=1),
        )
        tools_env = {
            "MCP_RESOURCE_URL": tools_resource,
            "MCP_AUTH_ISSUER": auth.issuer,
            "MCP_CLIENT_ID": tools_client["client_id"],
            "MCP_CLIENT_SECRET": tools_client["client_secret"],
            "MCP_INTROSPECTION": "on",
        }
        tools = ServiceProcess([venv_script("mcp-tools"), "serve"], port=tools_port, env=tools_env)
        with BackgroundServer(app, port=kit_port, lifespan="on"), tools:
            yield Setup(auth, kit_resource, tools_resource, machine)


def call(resource: str, token: str) -> httpx.Response:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    return httpx.post(resource, json=TOOLS_LIST, headers=headers, trust_env=False, timeout=10)


def revoke(setup: Setup, token: str) -> None:
    client = setup.machine
    response = httpx.post(
        f"{setup.auth.issuer}/revoke",
        data={"token": token},
        auth=(client["client_id"], client["client_secret"]),
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def refused_within(resource: str, token: str, seconds: float) -> float:
    """How long after now the server starts answering 401 invalid_token (fails past `seconds`)."""
    started = time.monotonic()
    while (response := call(resource, token)).status_code == 200:
        assert time.monotonic() - started < seconds, "the revoked token is still accepted"
        time.sleep(0.1)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return time.monotonic() - started


def test_a_token_revoked_at_the_auth_service_is_refused_within_the_cache_ttl(setup: Setup) -> None:
    token = setup.auth.machine_token(setup.machine, setup.kit_resource)
    assert call(setup.kit_resource, token).status_code == 200  # introspected: active, now cached
    revoke(setup, token)
    assert refused_within(setup.kit_resource, token, seconds=3) <= 1.5


async def test_revoking_the_application_on_the_account_page_ends_its_access_tokens(setup: Setup) -> None:
    async with httpx.AsyncClient(base_url=setup.auth.issuer, trust_env=False) as http:
        registered = (
            await http.post(
                "/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
            )
        ).json()
        request = new_request(
            registered["client_id"], resource=setup.kit_resource, scope="mcp:tools", issuer=setup.auth.issuer
        )
        browser = Browser(http, stop_at=[CALLBACK])
        consent = await browser.open(request.url())
        assert isinstance(consent, Page), consent
        sign_in = await browser.submit(consent, {"decision": "approve"})
        assert isinstance(sign_in, Page), sign_in
        arrival = await browser.submit(sign_in, {"username": "alice"})
        assert isinstance(arrival, Arrival), arrival
        code = query(arrival.url)["code"]
        tokens = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": request.verifier,
                "client_id": registered["client_id"],
                "resource": setup.kit_resource,
            },
        )
        assert tokens.status_code == 200, tokens.text
        access_token = tokens.json()["access_token"]
        assert call(setup.kit_resource, access_token).status_code == 200

        page = await browser.open(f"{setup.auth.issuer}/account/apps")
        assert isinstance(page, Page), page
        [form] = [f for f in page.forms() if f.fields.get("client_id") == registered["client_id"]]
        revoked = await http.post("/account/apps/revoke", data=form.fields)
        assert revoked.status_code == 303
    refused_within(setup.kit_resource, access_token, seconds=3)


def test_mcp_tools_serve_with_introspection_on_refuses_a_revoked_token(setup: Setup) -> None:
    live = setup.auth.machine_token(setup.machine, setup.tools_resource)
    revoked = setup.auth.machine_token(setup.machine, setup.tools_resource)
    revoke(setup, revoked)
    assert call(setup.tools_resource, live).status_code == 200
    response = call(setup.tools_resource, revoked)
    assert response.status_code == 401  # not yet cached as active: refused at once
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
