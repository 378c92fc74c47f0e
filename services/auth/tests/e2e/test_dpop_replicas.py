"""A DPoP proof is single-use across replicas, behind the round-robin proxy (every request goes to the
other replica than the one before, so a replay always reaches the replica that did not accept it).

`mcp-auth serve` twice, sharing Postgres only (no AUTH_REDIS_URL: proofs' `jti`s live in the database);
two MCP servers of two `mcp-tools serve` replicas each: the first sharing Redis (MCP_REDIS_URL), the
second without it — the control that shows the proxy really does reach another process's memory.
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_auth_kit import DPoPKey
from mcp_auth_server.db.migrate import upgrade
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.postgres import temporary_database
from mcp_testing.round_robin_proxy import RoundRobinProxy

from .stack import Stack, running_stack

EXAMPLE = Path(__file__).resolve().parents[4] / "shared" / "examples" / "dpop_client.py"
REDIS_URL = "redis://127.0.0.1:6379/0"
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "calculate", "arguments": {"expression": "1"}},
}


@pytest.fixture(scope="module")
def stack(github_server: GitHubStandIn) -> Iterator[Stack]:
    state = github_server.reset()
    state.add_user("octocat", name="The Octocat")
    state.auto_login = "octocat"
    with temporary_database() as database:
        upgrade(database)
        yield from running_stack(
            database,
            github_server,
            mcp_count=2,
            auth_replicas=2,
            mcp_replicas=2,
            mcp_extra=[{"MCP_REDIS_URL": REDIS_URL}, {}],
        )


def proxy_of(stack: Stack, url: str) -> RoundRobinProxy:
    return next(proxy for base, proxy in stack.proxies.items() if url.startswith(base))


async def bound_tokens(resource: str) -> tuple[DPoPKey, str, dict[str, Any]]:
    """The documented client's sign-in (through both auth replicas): its key, client id and tokens."""
    example = runpy.run_path(str(EXAMPLE))
    key = DPoPKey.generate()
    async with httpx.AsyncClient(timeout=30) as http:
        browser = Browser(http, stop_at=[example["REDIRECT_URI"]])

        async def approve(url: str) -> str:
            result = await browser.open(url)
            while isinstance(result, Page):
                result = await browser.submit(result, {"decision": "approve"})
            assert isinstance(result, Arrival)
            return result.url

        metadata = await example["discover"](http, resource)
        client_id, tokens = await example["sign_in"](http, metadata, key, resource, approve)
    return key, client_id, tokens


async def send_twice(
    proxy: RoundRobinProxy, url: str, **request: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The same request twice in a row; they must have reached the two different replicas."""
    start = len(proxy.forwarded)
    async with httpx.AsyncClient(timeout=30) as http:
        first = await http.post(url, **request)
        second = await http.post(url, **request)
    upstreams = {forwarded.upstream for forwarded in proxy.forwarded[start:]}
    assert upstreams == set(proxy.upstreams), proxy.forwarded[start:]
    return first, second


async def test_a_proof_replayed_to_the_other_replica_of_an_mcp_server_is_refused(stack: Stack) -> None:
    resource = next(iter(stack.mcp))  # replicas sharing Redis
    key, _, tokens = await bound_tokens(resource)
    token = tokens["access_token"]
    proof = key.proof("POST", resource, access_token=token)
    headers = {**HEADERS, "Authorization": f"DPoP {token}", "DPoP": proof}
    accepted, replayed = await send_twice(proxy_of(stack, resource), resource, json=CALL, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert replayed.status_code == 401
    assert 'DPoP error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    assert "already used" in replayed.json()["error_description"]


async def test_without_shared_replay_memory_the_other_replica_would_accept_the_replay(stack: Stack) -> None:
    """The control: what MCP_REDIS_URL prevents (and why it is documented for replicated servers)."""
    resource = list(stack.mcp)[1]  # replicas each with their own memory
    key, _, tokens = await bound_tokens(resource)
    token = tokens["access_token"]
    headers = {
        **HEADERS,
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("POST", resource, access_token=token),
    }
    accepted, replayed = await send_twice(proxy_of(stack, resource), resource, json=CALL, headers=headers)
    assert (accepted.status_code, replayed.status_code) == (200, 200)


async def test_a_proof_replayed_to_the_other_auth_replica_is_refused(stack: Stack) -> None:
    resource = next(iter(stack.mcp))
    key, client_id, tokens = await bound_tokens(resource)
    token_url = f"{stack.issuer}/token"
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    proof = key.proof("POST", token_url)
    accepted, replayed = await send_twice(
        proxy_of(stack, stack.issuer), token_url, data=form, headers={"DPoP": proof}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["token_type"] == "DPoP"
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_dpop_proof"
