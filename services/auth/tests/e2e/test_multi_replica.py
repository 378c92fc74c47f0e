"""Issues 7 and 5 end to end: replicas share nothing but Postgres, and a key rotation costs no call.

Two `mcp-auth serve` processes and two replicas of one `mcp-tools serve` run against one database,
each pair behind a round-robin proxy on loopback whose URL is the public one (the issuer, the
resource). Every request goes to the other replica than the one before, so a flow that kept state in
one process's memory (consent, callback, refresh family, signing keys) fails here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select

from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.db.models import Grant, RefreshToken
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.postgres import temporary_database
from mcp_testing.round_robin_proxy import RoundRobinProxy

from .sdk_client import MemoryStorage, Person, oauth_mcp_client
from .stack import Stack, mcp_auth, running_stack

RELOAD_SECONDS = 1
# A resource server refetches the JWKS for an unknown kid at most once per 10 s (the kit's
# `refetch_interval`), counted from its last fetch of any kind. One that fetched just before the new
# key was published (up to a reload interval after `keys rotate`) refuses the key's tokens until
# then: with a 2 s delay, this drill run on its own got a 401 from a replica whose start-up fetch
# was 9.3 s before the first new-kid token.
ACTIVATION_DELAY = RELOAD_SECONDS + 10 + 1
CALLS_PER_TOKEN = 10  # the drill refreshes after this many tool calls, so new tokens follow the signer


@pytest.fixture(scope="module")
def replica_database() -> Iterator[str]:
    """A database of this module's own: the rotation drill changes the signing keys."""
    with temporary_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def stack(replica_database: str, github_server: GitHubStandIn) -> Iterator[Stack]:
    state = github_server.reset()
    state.add_user("octocat", name="The Octocat", repos=["hello-world", "spoon"])
    state.auto_login = "octocat"
    yield from running_stack(
        replica_database,
        github_server,
        mcp_count=1,
        auth_replicas=2,
        mcp_replicas=2,
        AUTH_RELOAD_SECONDS=str(RELOAD_SECONDS),
    )


@pytest.fixture(scope="module")
def resource(stack: Stack) -> str:
    return next(iter(stack.mcp))


def proxy_of(stack: Stack, url: str) -> RoundRobinProxy:
    return next(proxy for base, proxy in stack.proxies.items() if url.startswith(base))


@dataclass
class Tokens:
    client_id: str
    access_token: str
    refresh_token: str


async def sign_in(resource: str) -> Tokens:
    """The SDK client's whole flow (a new registration, one consent), ending with one tool call."""
    storage = MemoryStorage()
    async with (
        httpx.AsyncClient() as browser_http,
        oauth_mcp_client(resource, Person(browser_http), storage) as client,
    ):
        assert not (await client.call_tool("calculate", {"expression": "1 + 1"})).is_error
    assert storage.tokens is not None
    assert storage.tokens.refresh_token is not None
    assert storage.client_info is not None
    assert storage.client_info.client_id is not None
    return Tokens(storage.client_info.client_id, storage.tokens.access_token, storage.tokens.refresh_token)


async def refresh(http: httpx.AsyncClient, issuer: str, resource: str, tokens: Tokens) -> httpx.Response:
    return await http.post(
        f"{issuer}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "client_id": tokens.client_id,
            "resource": resource,
        },
    )


def refreshed(tokens: Tokens, response: httpx.Response) -> Tokens:
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(tokens.client_id, body["access_token"], body["refresh_token"])


def kid_of(access_token: str) -> str:
    return str(jwt.get_unverified_header(access_token)["kid"])


def served_by(proxy: RoundRobinProxy, since: int, path: str) -> list[tuple[str, int]]:
    return [(f.upstream, f.status) for f in proxy.forwarded[since:] if f.path.endswith(path)]


async def test_the_sdk_flow_with_step_up_crosses_both_replicas_of_each_service(
    stack: Stack, resource: str
) -> None:
    auth_proxy, mcp_proxy = proxy_of(stack, stack.issuer), proxy_of(stack, resource)
    auth_start, mcp_start = len(auth_proxy.forwarded), len(mcp_proxy.forwarded)
    storage = MemoryStorage()
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http)
        async with oauth_mcp_client(resource, person, storage) as client:
            who = await client.call_tool("get_user_info", {})
            assert not who.is_error, who
            repos = await client.call_tool("get_github_repos", {"sort": "full_name"})  # 403, step-up
            assert not repos.is_error, repos
            assert "spoon" in str(repos.structured_content or repos.content)
    assert len(person.pages_seen) == 2  # one consent per scope set; both approved across replicas

    auth_paths = served_by(auth_proxy, auth_start, "")
    # Each /authorize, /consent and /callback of one sign-in alternated between the two replicas.
    for path in ("/authorize", "/consent", "/callback", "/token", "/register"):
        served = served_by(auth_proxy, auth_start, path)
        assert served, f"no {path} request went through the proxy"
        assert all(status < 500 for _, status in served), (path, served)
    assert {upstream for upstream, _ in auth_paths} == set(auth_proxy.upstreams)
    assert {upstream for upstream, _ in served_by(mcp_proxy, mcp_start, "/mcp")} == set(mcp_proxy.upstreams)
    assert storage.tokens is not None
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["iss"] == stack.issuer
    assert claims["aud"] == resource


async def test_replicas_started_together_on_an_empty_database_share_one_first_key(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        published = [(await http.get(f"{stack.issuer}/jwks.json")).json()["keys"] for _ in stack.auth]
    assert [len(keys) for keys in published] == [1, 1]
    assert published[0] == published[1]


@pytest.fixture
async def tokens(resource: str) -> Tokens:
    return await sign_in(resource)


async def test_a_refresh_family_rotates_across_replicas_in_sequence(
    stack: Stack, resource: str, tokens: Tokens
) -> None:
    auth_proxy = proxy_of(stack, stack.issuer)
    start = len(auth_proxy.forwarded)
    seen = {tokens.refresh_token}
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(12):
            tokens = refreshed(tokens, await refresh(http, stack.issuer, resource, tokens))
            seen.add(tokens.refresh_token)
    assert len(seen) == 13
    served = served_by(auth_proxy, start, "/token")
    assert [status for _, status in served] == [200] * 12
    assert {upstream for upstream, _ in served} == set(auth_proxy.upstreams)
    async with bearer_client(resource, tokens.access_token) as (client, _):
        assert not (await client.call_tool("calculate", {"expression": "2 * 21"})).is_error


async def test_concurrent_refreshes_of_one_token_keep_to_the_grace_rules(
    stack: Stack, resource: str, tokens: Tokens, replica_database: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        # Two at once (one client, two egress addresses): the second is the grace window's one reuse.
        pair = await asyncio.gather(*(refresh(http, stack.issuer, resource, tokens) for _ in range(2)))
        assert [response.status_code for response in pair] == [200, 200]
        # Eight at once with one of those: one rotation, one grace reuse, the rest are reuse.
        sibling = refreshed(tokens, pair[0])
        burst = await asyncio.gather(*(refresh(http, stack.issuer, resource, sibling) for _ in range(8)))
    statuses = sorted(response.status_code for response in burst)
    assert statuses == [200, 200] + [400] * 6, [response.text for response in burst]
    assert {r.json()["error"] for r in burst if r.status_code == 400} == {"invalid_grant"}
    engine = create_engine(replica_database)
    try:
        async with create_session_factory(engine)() as session:
            grants = (await session.scalars(select(Grant).where(Grant.client_id == tokens.client_id))).all()
            assert len(grants) == 1  # refreshes never fork a family into a second grant
            assert grants[0].revoked_reason == "refresh_token_reuse"
            generations = await session.scalar(
                select(func.count()).where(RefreshToken.grant_id == grants[0].id)
            )
    finally:
        await engine.dispose()
    assert generations == 1 + 2 + 2  # the first token, two from the pair, two from the burst


@asynccontextmanager
async def bearer_client(resource: str, access_token: str) -> AsyncIterator[tuple[Client, httpx2.AsyncClient]]:
    """An MCP client sending a fixed bearer token, which the caller may swap between calls."""
    headers = {"Authorization": f"Bearer {access_token}"}
    async with (
        httpx2.AsyncClient(timeout=10, headers=headers) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        yield client, http


@dataclass
class Drill:
    """What the client loop saw while keys rotated."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)
    kids: list[str] = field(default_factory=list)  # the kid of every access token put to use


async def keep_calling_tools(
    stack: Stack, resource: str, tokens: Tokens, drill: Drill, stop: asyncio.Event, seconds: float
) -> None:
    """Call a tool until told to stop, refreshing every CALLS_PER_TOKEN calls; bounded in time and count."""
    deadline = time.monotonic() + seconds
    async with (
        httpx.AsyncClient(timeout=10) as auth_http,
        bearer_client(resource, tokens.access_token) as (client, http),
    ):
        while not stop.is_set() and time.monotonic() < deadline and drill.calls < 5_000:
            if drill.calls % CALLS_PER_TOKEN == 0:
                response = await refresh(auth_http, stack.issuer, resource, tokens)
                if response.status_code != 200:
                    drill.failures.append(f"refresh: {response.status_code} {response.text}")
                    return
                tokens = refreshed(tokens, response)
                http.headers["Authorization"] = f"Bearer {tokens.access_token}"
                drill.kids.append(kid_of(tokens.access_token))
            try:
                result = await client.call_tool("calculate", {"expression": "6 * 7"})
            except Exception as exc:  # any failure counts; the session may not survive it
                drill.failures.append(f"call {drill.calls} with {drill.kids[-1]}: {exc!r}")
                return
            if result.is_error:
                drill.failures.append(f"call {drill.calls} with {drill.kids[-1]}: {result.content}")
            drill.calls += 1
            await asyncio.sleep(0.02)


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        await asyncio.sleep(0.05)


async def test_tools_keep_working_through_a_signing_key_rotation(
    stack: Stack, resource: str, tokens: Tokens
) -> None:
    mcp_proxy = proxy_of(stack, resource)
    mcp_start = len(mcp_proxy.forwarded)
    old_kid = kid_of(tokens.access_token)
    drill, stop = Drill(), asyncio.Event()
    caller = asyncio.create_task(keep_calling_tools(stack, resource, tokens, drill, stop, seconds=45))
    try:
        await wait_for(lambda: drill.calls >= CALLS_PER_TOKEN or caller.done(), seconds=5)
        rotated = await asyncio.to_thread(
            mcp_auth, stack.auth_env, "keys", "rotate", "--activation-delay", str(ACTIVATION_DELAY)
        )
        match = re.search(r"added key (\S+) ", rotated)
        assert match, rotated
        new_kid = match[1]
        # Published at once, signing only after the delay: until then, fresh tokens keep the old kid.
        await wait_for(lambda: new_kid in drill.kids or caller.done(), ACTIVATION_DELAY + 5 * RELOAD_SECONDS)
        await asyncio.to_thread(mcp_auth, stack.auth_env, "keys", "retire", old_kid)
        # Go on until every replica has reloaded since the retirement, with a few more refreshes.
        settled, refreshes = time.monotonic() + 2 * RELOAD_SECONDS, len(drill.kids) + 3
        await wait_for(
            lambda: (time.monotonic() > settled and len(drill.kids) > refreshes) or caller.done(),
            seconds=2 * RELOAD_SECONDS + 10,
        )
    finally:
        stop.set()
        await asyncio.wait_for(caller, 15)
    assert drill.failures == []
    assert old_kid in drill.kids
    assert new_kid in drill.kids
    # Every replica loaded the key long before it signs and switches at its activation time: no
    # token with the old kid after the first with the new one.
    assert old_kid not in drill.kids[drill.kids.index(new_kid) :]
    served = served_by(mcp_proxy, mcp_start, "/mcp")
    assert {upstream for upstream, _ in served} == set(mcp_proxy.upstreams)
    assert all(status == 200 for _, status in served)
    async with httpx.AsyncClient() as http:
        for _ in stack.auth:  # each replica in turn
            published = {key["kid"] for key in (await http.get(f"{stack.issuer}/jwks.json")).json()["keys"]}
            assert published == {old_kid, new_kid}  # the retired key stays until its tokens have expired
