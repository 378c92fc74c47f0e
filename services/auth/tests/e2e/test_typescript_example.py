"""The fleet promise in another language: examples/typescript against the real auth service.

`npm ci` installs the example's locked dependencies, `npm run build` compiles it, and `node` serves it
next to a Python server protected by the kit. The `mcp` SDK's OAuth client discovers the TypeScript
server, signs in through the auth service (dev upstream) and calls its tools; tokens for one server are
refused by the other.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from mcp.server.mcpserver import MCPServer

from mcp_auth_kit import protect
from mcp_testing.background_server import BackgroundServer
from mcp_testing.node import npm_ci, require_node
from mcp_testing.processes import ServiceProcess, free_port

from ..auth_process import DevAuthService, dev_auth_service, tools_resources
from .sdk_client import MemoryStorage, Person, oauth_mcp_client

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "typescript"
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


@dataclass
class Fleet:
    auth: DevAuthService
    typescript: str  # resource URL of the TypeScript server
    python: str  # resource URL of a kit-protected Python server
    machine: dict[str, str]


@pytest.fixture(scope="module")
def fleet(migrated_database: str) -> Iterator[Fleet]:
    node, _ = require_node()
    npm_ci(EXAMPLE, "build")
    ts_port, py_port = free_port(), free_port()
    typescript, python = f"http://127.0.0.1:{ts_port}/mcp", f"http://127.0.0.1:{py_port}/mcp"
    with dev_auth_service(migrated_database, tools_resources(typescript, python)) as auth:
        machine = auth.cli(
            "clients", "add", "--name", "CI", "--machine", "--scope", "mcp:tools",
            "--resource", typescript, "--resource", python,
        )  # fmt: skip
        notes = MCPServer("python")

        @notes.tool()
        def ping() -> str:
            """Answer pong."""
            return "pong"

        app = protect(notes, resource_url=python, issuer=auth.issuer, scopes=["mcp:tools"])
        env = {"MCP_RESOURCE_URL": typescript, "MCP_AUTH_ISSUER": auth.issuer, "PORT": str(ts_port)}
        server = ServiceProcess(
            [node, "dist/server.js"], port=ts_port, env=env, cwd=EXAMPLE, ready_path="/healthz"
        )
        with BackgroundServer(app, port=py_port, lifespan="on"), server:
            yield Fleet(auth, typescript, python, machine)


def call(resource: str, token: str | None) -> httpx.Response:
    headers = {**HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(resource, json=TOOLS_LIST, headers=headers, trust_env=False, timeout=10)


def test_discovery_points_at_the_auth_service(fleet: Fleet) -> None:
    refused = call(fleet.typescript, None)
    metadata_url = fleet.typescript.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert refused.status_code == 401
    assert (
        refused.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url}", scope="mcp:tools"'
    )
    document = httpx.get(metadata_url, trust_env=False).json()
    assert document["resource"] == fleet.typescript
    assert document["authorization_servers"] == [fleet.auth.issuer]


async def test_sdk_oauth_client_signs_in_and_calls_the_typescript_server(fleet: Fleet) -> None:
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http, username="ts-user")
        async with oauth_mcp_client(fleet.typescript, person, MemoryStorage()) as client:
            whoami = await client.call_tool("whoami", {})
            total = await client.call_tool("add", {"a": 2, "b": 40})
    assert str(getattr(whoami.content[0], "text", "")) == "ts-user"
    assert getattr(total.content[0], "text", "") == "42"
    assert len(person.pages_seen) == 1  # the auth service's consent page


def test_audiences_are_isolated_between_languages(fleet: Fleet) -> None:
    for_typescript = fleet.auth.machine_token(fleet.machine, fleet.typescript)
    for_python = fleet.auth.machine_token(fleet.machine, fleet.python)
    assert call(fleet.typescript, for_typescript).status_code == 200
    assert call(fleet.python, for_python).status_code == 200
    for resource, token in ((fleet.python, for_typescript), (fleet.typescript, for_python)):
        refused = call(resource, token)
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("header", ["alg-none", "hs256", "wrong-typ"])
def test_the_typescript_server_refuses_forged_tokens(fleet: Fleet, header: str) -> None:
    genuine = fleet.auth.machine_token(fleet.machine, fleet.typescript)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    if header == "alg-none":
        head = {"alg": "none", "typ": "at+jwt"}
        forged = (
            ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                for part in (head, claims)
            )
            + "."
        )
    elif header == "hs256":  # the algorithm-confusion attack: HMAC keyed with public material
        forged = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"typ": "at+jwt"})
    else:
        original = jwt.get_unverified_header(genuine)
        forged = jwt.encode(
            claims, "k" * 32, algorithm="HS256", headers={"typ": "JWT", "kid": original["kid"]}
        )
    assert call(fleet.typescript, forged).status_code == 401


def test_a_wrong_issuer_stops_the_typescript_server_with_one_line(fleet: Fleet) -> None:
    node, _ = require_node()
    port = free_port()
    env = {"MCP_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp", "MCP_AUTH_ISSUER": fleet.auth.issuer + "/"}
    result = subprocess.run(
        [node, "dist/server.js"],
        cwd=EXAMPLE,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith(f'mcp-typescript-example: issuer mismatch: configured "{fleet.auth.issuer}/"')
