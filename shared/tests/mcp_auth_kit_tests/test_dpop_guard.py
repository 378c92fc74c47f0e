"""DPoP at an MCP server the kit protects (RFC 9449 §7, §9): one attack or rule per test, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AccessToken

from mcp_auth_kit import JWTVerifier, require_token
from mcp_auth_kit.dpop_client import DPoPAuth, DPoPKey
from mcp_auth_kit.dpop_setup import DPoPReplay, dpop_resource
from mcp_auth_kit.fastapi_dependencies import ResourceAuth

from .conftest import (
    LEGACY_HEADERS,
    IssuerStandIn,
    Served,
    Signer,
    claims_for,
    serve,
    serve_protected,
    sign,
    tool_call,
)

ALGS = 'algs="ES256 ES384 PS256 RS256 EdDSA"'
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def bound_token(issuer: IssuerStandIn, es256: Signer) -> Callable[..., str]:
    """bound_token(served, key, scope="mcp:tools", **claims): an access token bound to `key` (cnf.jkt)."""

    def make(target: Served, key: DPoPKey | None, scope: str = "mcp:tools", **claims: Any) -> str:
        if key is not None:
            claims.setdefault("cnf", {"jkt": key.jkt})
        return sign(es256, claims_for(issuer.url, target.resource_url, scope=scope, **claims))

    return make


async def call(
    served: Served,
    token: str | None,
    proof: str | None = None,
    scheme: str = "DPoP",
    body: Any = None,
    **headers: str,
) -> httpx.Response:
    sent = dict(LEGACY_HEADERS)
    if token is not None:
        sent["Authorization"] = f"{scheme} {token}"
    if proof is not None:
        sent["DPoP"] = proof
    async with httpx.AsyncClient() as client:
        return await client.post(
            served.resource_url, json=body or tool_call("list_notes"), headers={**sent, **headers}
        )


def proof_for(key: DPoPKey, served: Served, token: str, method: str = "POST", url: str | None = None) -> str:
    return key.proof(method, url or served.resource_url, access_token=token)


def dpop_challenge(response: httpx.Response) -> str:
    """The DPoP challenge of a WWW-Authenticate header (the first, or the one after the Bearer one)."""
    header = response.headers["www-authenticate"]
    if header.startswith("DPoP "):
        return header
    assert '", DPoP ' in header, header
    return header[header.index('", DPoP ') + 3 :]


def assert_refused(response: httpx.Response, error: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert f'error="{error}"' in dpop_challenge(response)
    assert ALGS in dpop_challenge(response)
    assert response.json()["error"] == error


async def test_a_bound_token_with_its_proof_is_admitted(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    response = await call(served, token, proof_for(key, served, token))
    assert response.status_code == 200, response.text
    assert served.notes.executed == ["list_notes"]
    assert "dpop-nonce" not in response.headers  # no nonces unless configured


@pytest.mark.parametrize("algorithm", ["ES256", "PS256", "EdDSA"])
async def test_proofs_of_each_algorithm_are_admitted(
    served: Served, bound_token: Callable[..., str], algorithm: str
) -> None:
    key = DPoPKey.generate(algorithm)
    token = bound_token(served, key)
    assert (await call(served, token, proof_for(key, served, token))).status_code == 200


async def test_a_bound_token_presented_as_bearer_is_invalid_token(
    served: Served, bound_token: Callable[..., str]
) -> None:
    token = bound_token(served, DPoPKey.generate())
    response = await call(served, token, scheme="Bearer")
    assert response.status_code == 401
    header = response.headers["www-authenticate"]
    assert header.startswith('Bearer error="invalid_token"')  # §7.2: the error goes to the scheme used
    assert dpop_challenge(response).startswith(f"DPoP {ALGS}")  # and DPoP is offered as the cure
    assert served.notes.executed == []


async def test_a_copied_token_with_a_proof_from_another_key_is_refused(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key, thief = DPoPKey.generate(), DPoPKey.generate()
    token = bound_token(served, key)
    response = await call(served, token, proof_for(thief, served, token))
    assert_refused(response, "invalid_dpop_proof")
    assert response.headers["www-authenticate"].startswith(
        'Bearer resource_metadata="'
    )  # bearer still allowed
    assert served.notes.executed == []


async def test_a_dpop_token_without_a_proof_is_refused(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    assert_refused(await call(served, bound_token(served, key)), "invalid_dpop_proof")


async def test_a_proof_for_another_method_is_refused(served: Served, bound_token: Callable[..., str]) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    assert_refused(
        await call(served, token, proof_for(key, served, token, method="GET")), "invalid_dpop_proof"
    )


@pytest.mark.parametrize("path", ["/other", "/mcp/", "/sse"])
async def test_a_proof_for_another_url_is_refused(
    served: Served, bound_token: Callable[..., str], path: str
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    proof = proof_for(key, served, token, url=served.url + path)
    assert_refused(await call(served, token, proof), "invalid_dpop_proof")


async def test_htu_is_the_configured_origin_not_the_host_header(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    proof = proof_for(key, served, token, url="http://evil.example/mcp")
    response = await call(served, token, proof, Host="evil.example", **{"X-Forwarded-Host": "evil.example"})
    assert_refused(response, "invalid_dpop_proof")


async def test_a_replayed_proof_is_refused(served: Served, bound_token: Callable[..., str]) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    proof = proof_for(key, served, token)
    assert (await call(served, token, proof)).status_code == 200
    replayed = await call(served, token, proof)
    assert_refused(replayed, "invalid_dpop_proof")
    assert "already used" in replayed.json()["error_description"]


async def test_a_proof_without_ath_is_refused(served: Served, bound_token: Callable[..., str]) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    assert_refused(await call(served, token, key.proof("POST", served.resource_url)), "invalid_dpop_proof")


async def test_a_proof_for_another_token_is_refused(served: Served, bound_token: Callable[..., str]) -> None:
    key = DPoPKey.generate()
    token, other = bound_token(served, key), bound_token(served, key)
    assert_refused(await call(served, token, proof_for(key, served, other)), "invalid_dpop_proof")


async def test_an_unbound_token_with_the_dpop_scheme_is_invalid_token(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, None)
    assert_refused(await call(served, token, proof_for(key, served, token)), "invalid_token")


async def test_an_expired_dpop_token_is_invalid_token_on_the_dpop_challenge(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key, exp=1, iat=0)
    response = await call(served, token, proof_for(key, served, token))
    assert_refused(response, "invalid_token")
    assert response.headers["www-authenticate"].startswith('Bearer resource_metadata="')  # no error on Bearer


async def test_a_dpop_token_lacking_a_scope_gets_the_step_up_challenge_on_dpop(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    response = await call(served, token, proof_for(key, served, token), body=tool_call("delete_notes"))
    assert_refused(response, "insufficient_scope", status=403)
    assert 'scope="mcp:tools notes:admin"' in dpop_challenge(response)


async def test_bearer_clients_see_no_change_where_dpop_is_allowed(
    served: Served, bound_token: Callable[..., str]
) -> None:
    token = bound_token(served, None)
    assert (await call(served, token, scheme="Bearer")).status_code == 200
    anonymous = await call(served, None)
    assert anonymous.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{served.metadata_url}", scope="mcp:tools"'
    )


@pytest.mark.parametrize("value", ["DPoP a.b=.c", "DPoP", "dpop abc def", "DPoP\tabc"])
async def test_malformed_dpop_header_gets_400_invalid_request_on_the_dpop_challenge(
    served: Served, value: str
) -> None:
    response = await call(served, None, Authorization=value)
    assert_refused(response, "invalid_request", 400)  # RFC 9449 §7.2: the error goes to the scheme used
    assert response.headers["www-authenticate"].startswith(
        f'Bearer resource_metadata="{served.metadata_url}"'  # and the Bearer challenge carries none
    )
    assert served.notes.executed == []


@pytest_asyncio.fixture
async def required(issuer: IssuerStandIn) -> AsyncIterator[Served]:
    async with serve_protected(issuer.url, dpop="required") as running:
        yield running


async def test_dpop_required_refuses_bearer_tokens(required: Served, bound_token: Callable[..., str]) -> None:
    response = await call(required, bound_token(required, None), scheme="Bearer")
    assert_refused(response, "invalid_token")
    assert response.headers["www-authenticate"].startswith("DPoP ")  # no Bearer challenge at all
    assert required.notes.executed == []


async def test_dpop_required_answers_a_malformed_bearer_header_on_its_dpop_challenge(
    required: Served,
) -> None:
    response = await call(required, None, Authorization="Bearer a.b=.c")
    assert_refused(response, "invalid_request", 400)
    assert response.headers["www-authenticate"].startswith("DPoP ")


async def test_dpop_required_challenges_with_dpop_only(required: Served) -> None:
    response = await call(required, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'DPoP {ALGS}, resource_metadata="{required.metadata_url}", scope="mcp:tools"'
    )


async def test_dpop_required_admits_bound_tokens_and_says_so_in_its_metadata(
    required: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    token = bound_token(required, key)
    assert (await call(required, token, proof_for(key, required, token))).status_code == 200
    async with httpx.AsyncClient() as client:
        document = (await client.get(required.metadata_url)).json()
    assert document["dpop_bound_access_tokens_required"] is True
    assert "ES256" in document["dpop_signing_alg_values_supported"]


async def test_nonce_round_trip_at_the_resource_server(
    issuer: IssuerStandIn, bound_token: Callable[..., str]
) -> None:
    async with serve_protected(issuer.url, dpop_nonce_secret="a secret the replicas share") as served:
        key = DPoPKey.generate()
        token = bound_token(served, key)
        refused = await call(served, token, proof_for(key, served, token))
        assert_refused(refused, "use_dpop_nonce")
        nonce = refused.headers["dpop-nonce"]
        auth = DPoPAuth(key, access_token=token)
        async with httpx.AsyncClient(auth=auth, headers=LEGACY_HEADERS) as client:
            response = await client.post(served.resource_url, json=tool_call("list_notes"))
        assert response.status_code == 200, response.text
        assert response.headers["dpop-nonce"]  # §8.2: kept current with every answer
        assert nonce


async def test_a_proof_replayed_to_another_replica_is_refused_when_they_share_redis(
    issuer: IssuerStandIn, bound_token: Callable[..., str]
) -> None:
    async with serve_protected(issuer.url, dpop_redis_url=REDIS_URL) as first:
        key = DPoPKey.generate()
        token = bound_token(first, key)
        proof = proof_for(key, first, token)
        assert (await call(first, token, proof)).status_code == 200
        # A second replica of the same server: same resource URL, same Redis, another process's memory.
        replica = DPoPReplay(REDIS_URL)
        try:
            again = dpop_resource(first.resource_url, "allowed", replica.cache)
            with pytest.raises(Exception, match="already used"):
                await again.verifier.verify(
                    proof, method="POST", url=first.resource_url, access_token=token, bound_jkt=key.jkt
                )
        finally:
            await replica.aclose()


async def test_the_sse_transport_takes_dpop_tokens(served: Served, bound_token: Callable[..., str]) -> None:
    key = DPoPKey.generate()
    token = bound_token(served, key)
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": proof_for(key, served, token, "GET", f"{served.url}/sse"),
    }
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", f"{served.url}/sse", headers=headers) as stream,
    ):
        assert stream.status_code == 200


async def test_the_sdk_client_calls_tools_with_dpop_auth(
    served: Served, bound_token: Callable[..., str]
) -> None:
    key = DPoPKey.generate()
    auth = DPoPAuth(key, access_token=bound_token(served, key))
    async with (
        httpx2.AsyncClient(auth=auth.for_httpx2(), timeout=10) as http,
        Client(streamable_http_client(served.resource_url, http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
    assert not result.is_error
    assert "octocat" in json.dumps(result.model_dump(mode="json"))


RESOURCE = "http://127.0.0.1:9201/api"


async def test_require_token_takes_dpop_tokens_too(issuer: IssuerStandIn, es256: Signer) -> None:
    verifier = JWTVerifier(issuer=issuer.url, resource_url=RESOURCE)
    replay = DPoPReplay()
    settings = ResourceAuth(
        verifier=verifier,
        resource_metadata="http://127.0.0.1:9201/.well-known/oauth-protected-resource/api",
        dpop=dpop_resource(RESOURCE, "allowed", replay.cache),
    )
    app = FastAPI()
    needs = Depends(require_token(["profile"], settings=settings))

    @app.get("/api")
    async def me(token: AccessToken = needs) -> dict[str, str]:
        return {"sub": token.subject or ""}

    key = DPoPKey.generate()
    token = sign(es256, claims_for(issuer.url, RESOURCE, scope="profile", cnf={"jkt": key.jkt}))
    async with serve(app, 9201) as url, httpx.AsyncClient() as client:
        ok = await client.get(
            f"{url}/api",
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": key.proof("GET", RESOURCE, access_token=token),
            },
        )
        as_bearer = await client.get(f"{url}/api", headers={"Authorization": f"Bearer {token}"})
        stolen = await client.get(
            f"{url}/api",
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": DPoPKey.generate().proof("GET", RESOURCE, access_token=token),
            },
        )
    await verifier.aclose()
    assert ok.json() == {"sub": "user-1"}
    assert as_bearer.status_code == 401
    assert 'error="invalid_token"' in as_bearer.headers["www-authenticate"]
    assert stolen.status_code == 401
    assert 'DPoP error="invalid_dpop_proof"' in stolen.headers["www-authenticate"]
