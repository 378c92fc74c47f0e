"""The auth service down: MCP services keep validating tokens with the signing keys they cached.

Resource servers check JWTs locally (RFC 9068 §4) against the JWKS they fetched; an auth-service
outage must not take every MCP server down with it. Both the token already seen and another token
issued before the outage (same key, never presented) keep working, and `/readyz` stays 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn

from ..e2e.stack import Stack, mcp_auth, start_stack

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",  # the services are stateless: no handshake needed
}
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "calculate", "arguments": {"expression": "6 * 7"}},
}


@pytest.fixture(scope="module")
def stack(migrated_database: str, github_server: GitHubStandIn) -> Iterator[Stack]:
    stack = start_stack(migrated_database, github_server, mcp_count=1)
    try:
        yield stack
    finally:
        stack.stop()


async def machine_tokens(stack: Stack, resource: str, count: int) -> list[str]:
    credentials = json.loads(
        mcp_auth(
            stack.auth_env, "clients", "add", "--name", "CI", "--machine", "--resource", resource,
            "--scope", "mcp:tools", "--json",
        )
    )  # fmt: skip
    form = {"grant_type": "client_credentials", "resource": resource}
    tokens = []
    async with httpx.AsyncClient(base_url=stack.issuer, timeout=10) as http:
        for _ in range(count):
            response = await http.post(
                "/token", data=form, auth=(credentials["client_id"], credentials["client_secret"])
            )
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])
    return tokens


async def calculate(http: httpx.AsyncClient, resource: str, token: str) -> httpx.Response:
    return await http.post(resource, json=CALL, headers={**HEADERS, "Authorization": f"Bearer {token}"})


async def test_tools_keep_working_with_cached_keys_while_the_auth_service_is_down(stack: Stack) -> None:
    [resource] = stack.mcp
    [service] = stack.mcp[resource]
    seen, unseen = await machine_tokens(stack, resource, 2)
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        before = await calculate(http, resource, seen)
        assert before.status_code == 200, before.text
        assert "42" in before.text

        for replica in stack.auth:
            replica.stop()
        with pytest.raises(httpx.TransportError):
            await http.get(f"{stack.issuer}/jwks.json")

        for token in (seen, unseen):
            during = await calculate(http, resource, token)
            assert during.status_code == 200, during.text
            assert "42" in during.text
        ready = await http.get(f"{service.url}/readyz")
        assert ready.status_code == 200, ready.text
        # A token the cache cannot vouch for is still refused: the outage opens nothing.
        forged = await calculate(http, resource, seen[:-4] + "AAAA")
        assert forged.status_code == 401
