"""Issue 15 end to end: the documented DPoP client against a real auth service and two MCP servers.

Processes on 127.0.0.1: `mcp-auth serve` on Postgres (GitHub upstream: the stand-in) demanding DPoP
nonces at /token (AUTH_DPOP_NONCES=on), and two `mcp-tools serve`: the first allows DPoP beside bearer
tokens, the second requires it at both ends (AUTH_RESOURCES `dpop: required`, MCP_DPOP=required) and
demands its own nonces. The client is `shared/examples/dpop_client.py`, the documentation's example,
run as it is; every attack the issue lists is its own test.
"""

from __future__ import annotations

import runpy
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_auth_kit import DPoPAuth, DPoPKey
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.dpop_proofs import DROP, craft
from mcp_testing.github_standin import GitHubStandIn

from .sdk_client import MemoryStorage, Person, oauth_mcp_client
from .stack import Stack, running_stack

EXAMPLE = Path(__file__).resolve().parents[4] / "shared" / "examples" / "dpop_client.py"
NONCE_SECRET = "a nonce secret the replicas of tools 1 share"


@pytest.fixture(scope="module")
def stack(migrated_database: str, github_server: GitHubStandIn) -> Iterator[Stack]:
    state = github_server.reset()
    state.add_user("octocat", name="The Octocat", repos=["hello-world", "spoon"])
    state.auto_login = "octocat"
    yield from running_stack(
        migrated_database,
        github_server,
        resource_options=[{}, {"dpop": "required"}],
        mcp_extra=[{}, {"MCP_DPOP": "required", "MCP_DPOP_NONCE_SECRET": NONCE_SECRET}],
        AUTH_DPOP_NONCES="on",
    )


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLE))


@pytest.fixture(scope="module")
def allowed(stack: Stack) -> str:
    return next(iter(stack.mcp))


@pytest.fixture(scope="module")
def required(stack: Stack) -> str:
    return list(stack.mcp)[1]


def person_at(http: httpx.AsyncClient, redirect_uri: str) -> Callable[[str], Awaitable[str]]:
    """The browser part: approve the consent page (GitHub signs octocat in by itself)."""
    browser = Browser(http, stop_at=[redirect_uri])

    async def open_url(url: str) -> str:
        result = await browser.open(url)
        while isinstance(result, Page):
            assert result.status_code == 200, result.text
            result = await browser.submit(result, {"decision": "approve"})
        assert isinstance(result, Arrival)
        return result.url

    return open_url


@dataclass
class Session:
    """What the documented client holds after signing in."""

    key: DPoPKey
    client_id: str
    tokens: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.tokens["access_token"])


async def sign_in(
    example: dict[str, Any],
    resource: str,
    key: DPoPKey | None = None,
    scope: str = "mcp:tools offline_access",
) -> Session:
    key = key or DPoPKey.generate()
    async with httpx.AsyncClient(timeout=30) as http:
        metadata = await example["discover"](http, resource)
        browser = person_at(http, example["REDIRECT_URI"])
        client_id, tokens = await example["sign_in"](http, metadata, key, resource, browser, scope)
    return Session(key, client_id, tokens, metadata)


@pytest.fixture(scope="module")
async def session(example: dict[str, Any], allowed: str) -> Session:
    return await sign_in(example, allowed)


async def post_tool(
    resource: str, token: str, proof: str | None = None, scheme: str = "DPoP"
) -> httpx.Response:
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
        "Authorization": f"{scheme} {token}",
    }
    if proof is not None:
        headers["DPoP"] = proof
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "calculate", "arguments": {"expression": "1+1"}},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(resource, json=body, headers=headers)


async def post_token(stack: Stack, proof: str, form: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{stack.issuer}/token", data=form, headers={"DPoP": proof})


def refused_at_resource(response: httpx.Response, error: str) -> None:
    assert response.status_code == 401, response.text
    assert f'DPoP error="{error}"' in response.headers["www-authenticate"]


def refused_at_token_endpoint(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# --- the flow works ---


async def test_the_documented_client_gets_bound_tokens_and_calls_tools_on_both_servers(
    example: dict[str, Any], allowed: str, required: str
) -> None:
    for resource in (allowed, required):
        session = await sign_in(example, resource)
        assert session.tokens["token_type"] == "DPoP"
        claims = claims_of(session.access_token)
        assert claims["cnf"] == {"jkt": session.key.jkt}
        assert claims["aud"] == resource
        result = await example["call_tool"](
            resource, DPoPAuth(session.key, session.access_token), "calculate", {"expression": "6 * 7"}
        )
        assert not result.is_error, result
        assert "42" in str(result.content)


async def test_bound_refresh_tokens_refresh_with_their_key(example: dict[str, Any], allowed: str) -> None:
    session = await sign_in(example, allowed)
    async with httpx.AsyncClient(timeout=30) as http:
        fresh = await example["refresh"](
            http, session.metadata, session.key, session.client_id, session.tokens["refresh_token"]
        )
    assert fresh["token_type"] == "DPoP"
    assert claims_of(fresh["access_token"])["cnf"] == {"jkt": session.key.jkt}
    result = await example["call_tool"](
        allowed, DPoPAuth(session.key, fresh["access_token"]), "calculate", {"expression": "2"}
    )
    assert not result.is_error


async def test_token_exchange_works_for_a_bound_subject_token(example: dict[str, Any], allowed: str) -> None:
    session = await sign_in(example, allowed, scope="mcp:tools github:repos offline_access")
    result = await example["call_tool"](
        allowed, DPoPAuth(session.key, session.access_token), "get_github_repos", {"sort": "full_name"}
    )
    assert not result.is_error, result
    assert "spoon" in str(result.structured_content or result.content)


async def test_bearer_clients_still_work_where_dpop_is_allowed(allowed: str) -> None:
    async with (
        httpx.AsyncClient() as browser_http,
        oauth_mcp_client(allowed, Person(browser_http), MemoryStorage()) as client,
    ):
        assert not (await client.call_tool("calculate", {"expression": "3 * 3"})).is_error


# --- the attacks the issue lists ---


async def test_the_same_token_as_bearer_fails(session: Session, allowed: str) -> None:
    response = await post_tool(allowed, session.access_token, scheme="Bearer")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_a_copied_token_with_a_proof_from_another_key_fails(session: Session, allowed: str) -> None:
    thief = DPoPKey.generate()
    proof = thief.proof("POST", allowed, access_token=session.access_token)
    refused_at_resource(await post_tool(allowed, session.access_token, proof), "invalid_dpop_proof")


async def test_a_replayed_proof_fails(session: Session, allowed: str) -> None:
    proof = session.key.proof("POST", allowed, access_token=session.access_token)
    assert (await post_tool(allowed, session.access_token, proof)).status_code == 200
    refused_at_resource(await post_tool(allowed, session.access_token, proof), "invalid_dpop_proof")


def private_key(session: Session) -> ec.EllipticCurvePrivateKey:
    """The session's key as a `cryptography` object, to hand-craft proofs that are wrong in one way."""
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(session.key.private_key_pem(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


async def bad_proof_fails_at_both_ends(stack: Stack, session: Session, allowed: str, **crafting: Any) -> None:
    """A proof wrong in one way is refused by the MCP server and by the token endpoint."""
    key = private_key(session)
    at_resource = craft(key, url=allowed, access_token=session.access_token, **crafting)
    refused_at_resource(await post_tool(allowed, session.access_token, at_resource), "invalid_dpop_proof")
    crafting.pop("access_token", None)
    at_token = craft(key, url=f"{stack.issuer}/token", **crafting)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": session.tokens["refresh_token"],
        "client_id": session.client_id,
    }
    refused_at_token_endpoint(await post_token(stack, at_token, form), "invalid_dpop_proof")


async def test_a_proof_with_the_wrong_htm_fails(stack: Stack, session: Session, allowed: str) -> None:
    await bad_proof_fails_at_both_ends(stack, session, allowed, method="GET")


async def test_a_proof_with_the_wrong_htu_fails(stack: Stack, session: Session, allowed: str) -> None:
    key = private_key(session)
    elsewhere = list(stack.mcp)[1]  # the other MCP server's URL
    refused_at_resource(
        await post_tool(
            allowed, session.access_token, craft(key, url=elsewhere, access_token=session.access_token)
        ),
        "invalid_dpop_proof",
    )
    form = {
        "grant_type": "refresh_token",
        "refresh_token": session.tokens["refresh_token"],
        "client_id": session.client_id,
    }
    refused_at_token_endpoint(await post_token(stack, craft(key, url=allowed), form), "invalid_dpop_proof")


async def test_a_proof_with_the_wrong_ath_fails(session: Session, allowed: str) -> None:
    proof = craft(private_key(session), url=allowed, access_token=session.access_token + "x")
    refused_at_resource(await post_tool(allowed, session.access_token, proof), "invalid_dpop_proof")


async def test_a_proof_with_a_stale_iat_fails(stack: Stack, session: Session, allowed: str) -> None:
    await bad_proof_fails_at_both_ends(stack, session, allowed, claims={"iat": int(time.time()) - 3600})


async def test_a_proof_with_the_wrong_typ_fails(stack: Stack, session: Session, allowed: str) -> None:
    await bad_proof_fails_at_both_ends(stack, session, allowed, header={"typ": "JWT"})


async def test_a_proof_with_a_symmetric_alg_fails(stack: Stack, session: Session, allowed: str) -> None:
    await bad_proof_fails_at_both_ends(
        stack, session, allowed, alg="HS256", signing_key=b"public-key-as-secret" * 2
    )


async def test_a_proof_carrying_a_private_jwk_fails(stack: Stack, session: Session, allowed: str) -> None:
    key = private_key(session)
    private_jwk = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
    await bad_proof_fails_at_both_ends(stack, session, allowed, header={"jwk": private_jwk})


async def test_a_proof_without_ath_fails(session: Session, allowed: str) -> None:
    proof = craft(private_key(session), url=allowed, access_token=session.access_token, claims={"ath": DROP})
    refused_at_resource(await post_tool(allowed, session.access_token, proof), "invalid_dpop_proof")


async def test_a_dpop_jkt_mismatch_fails(example: dict[str, Any], allowed: str) -> None:
    key, other = DPoPKey.generate(), DPoPKey.generate()
    # Authorizes with `key`'s thumbprint as dpop_jkt, then proves possession of `other` at /token.
    mismatched = DPoPKey.from_pem(other.private_key_pem())
    mismatched.jkt = key.jkt
    with pytest.raises(RuntimeError, match="bound to another DPoP key"):
        await sign_in(example, allowed, key=mismatched)


async def test_refresh_with_another_key_fails(example: dict[str, Any], session: Session) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await example["refresh"](
            http, session.metadata, DPoPKey.generate(), session.client_id, session.tokens["refresh_token"]
        )
    assert answer["error"] == "invalid_grant"


async def test_nonce_round_trip_at_both_ends(example: dict[str, Any], required: str, stack: Stack) -> None:
    key = DPoPKey.generate()
    sent: list[tuple[str, int]] = []

    async def record(response: httpx.Response) -> None:
        sent.append((response.request.url.path, response.status_code))

    async with httpx.AsyncClient(timeout=30, event_hooks={"response": [record]}) as http:
        form = {"grant_type": "client_credentials"}  # any token request: the nonce comes first
        refused = await http.post(
            f"{stack.issuer}/token", data=form, headers={"DPoP": key.proof("POST", f"{stack.issuer}/token")}
        )
        refused_at_token_endpoint(refused, "use_dpop_nonce")
        assert refused.headers["dpop-nonce"]
        session = await sign_in(example, required, key=key)
        assert session.tokens["token_type"] == "DPoP"
        resource_auth = DPoPAuth(key, session.access_token)
        response = await http.post(
            required,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "calculate", "arguments": {"expression": "5"}},
            },
            headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"},
            auth=resource_auth,
        )
    assert response.status_code == 200, response.text
    assert response.headers["dpop-nonce"]
    assert [status for path, status in sent if path == "/mcp"] == [401, 200]  # use_dpop_nonce, then in


async def test_dpop_required_refuses_bearer_use(example: dict[str, Any], required: str) -> None:
    session = await sign_in(example, required)
    response = await post_tool(required, session.access_token, scheme="Bearer")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('DPoP error="invalid_token"')


async def test_dpop_required_refuses_proofless_token_requests(required: str) -> None:
    """The SDK's bearer client gets as far as the token request, which is refused: no proof."""
    async with httpx.AsyncClient() as browser_http:
        with pytest.raises(BaseException) as refused:  # noqa: PT011 - anyio wraps it in exception groups
            async with oauth_mcp_client(required, Person(browser_http), MemoryStorage()) as client:
                await client.call_tool("calculate", {"expression": "1"})
    assert "invalid_dpop_proof" in _messages(refused.value)


def _messages(exc: BaseException) -> str:
    nested = getattr(exc, "exceptions", ())
    return " ".join([str(exc), *(_messages(inner) for inner in nested)])
