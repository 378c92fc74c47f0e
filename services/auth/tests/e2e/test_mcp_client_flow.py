"""Issue 3's end-to-end: the mcp SDK's OAuth client goes from a bare 401 to tool calls.

Every piece is a real process on 127.0.0.1: `mcp-auth serve` on Postgres with GitHub as the
upstream (the stand-in, reached through GITHUB_URL/GITHUB_API_URL), two `mcp-tools serve`
services with their own resource URLs, and the SDK client discovering everything itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest

from mcp_testing.github_standin import GitHubStandIn

from .sdk_client import MemoryStorage, Person, oauth_mcp_client
from .stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(migrated_database: str, github_server: GitHubStandIn) -> Iterator[Stack]:
    github_server.reset()
    yield from running_stack(migrated_database, github_server)


@pytest.fixture
def octocat(stack: Stack, github_server: GitHubStandIn) -> str:
    state = github_server.state
    if "octocat" not in state.users:
        state.add_user(
            "octocat", name="The Octocat", email="octocat@github.example", repos=["hello-world", "spoon"]
        )
        state.add_user("someone-else", repos=["not-yours"])
    state.auto_login = "octocat"
    return "octocat"


def _text(result: object) -> str:
    return str(getattr(result, "structured_content", None) or getattr(result, "content", ""))


async def test_sdk_client_goes_from_401_to_tool_calls_with_step_up(stack: Stack, octocat: str) -> None:
    resource = next(iter(stack.mcp))
    storage = MemoryStorage()
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http)
        async with oauth_mcp_client(resource, person, storage) as client:
            who = await client.call_tool("get_user_info", {})
            assert not who.is_error, who
            assert "octocat" in _text(who)
            assert len(person.pages_seen) == 1  # one consent page; GitHub signed in without a form

            # get_github_repos needs github:repos: a 403 step-up, a second consent, then success.
            repos = await client.call_tool("get_github_repos", {"sort": "full_name"})
            assert not repos.is_error, repos
            assert "hello-world" in _text(repos)
            assert "spoon" in _text(repos)
            assert "not-yours" not in _text(repos)
            assert len(person.pages_seen) == 2
            assert "github:repos" in person.pages_seen[1]

    assert storage.tokens is not None
    assert storage.client_info is not None
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == resource
    assert claims["iss"] == stack.issuer
    assert set(claims["scope"].split()) >= {"mcp:tools", "github:repos"}


async def test_second_run_for_the_same_user_needs_one_click_and_no_upstream(
    stack: Stack, octocat: str
) -> None:
    resource = next(iter(stack.mcp))
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http)
        async with oauth_mcp_client(resource, person, MemoryStorage()) as client:
            assert not (await client.call_tool("calculate", {"expression": "7 ** 8"})).is_error
        assert len(person.pages_seen) == 1
        # A new client instance (new registration) is a new client: it must be approved once...
        async with oauth_mcp_client(resource, person, storage := MemoryStorage()) as client:
            assert not (await client.call_tool("get_user_info", {})).is_error
        assert len(person.pages_seen) == 2
        # ...and the same registered client coming back with no tokens is a loopback client, whose identity
        # nothing assures (RFC 8252 §8.6): the page again, saying it was approved before; GitHub is not asked.
        storage.tokens = None
        async with oauth_mcp_client(resource, person, storage) as client:
            assert not (await client.call_tool("get_user_info", {})).is_error
        assert len(person.pages_seen) == 3
        assert "approved this application before" in person.pages_seen[2]
        assert len(person.arrivals) == 3


async def test_a_token_for_one_mcp_service_is_refused_by_the_other(stack: Stack, octocat: str) -> None:
    first, second = list(stack.mcp)
    storage = MemoryStorage()
    async with (
        httpx.AsyncClient() as browser_http,
        oauth_mcp_client(first, Person(browser_http), storage) as client,
    ):
        assert not (await client.call_tool("get_user_info", {})).is_error
    assert storage.tokens is not None
    async with httpx.AsyncClient() as http:
        response = await http.post(
            second,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Authorization": f"Bearer {storage.tokens.access_token}",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
