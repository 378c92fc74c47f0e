"""Red-team findings against the kit's DPoP checks (RFC 9449): one attack per test, named after it."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_auth_kit.dpop_client import DPoPKey

from .conftest import (
    LEGACY_HEADERS,
    IssuerStandIn,
    Served,
    Signer,
    claims_for,
    serve_protected,
    sign,
    tool_call,
)

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def bound(issuer: IssuerStandIn, es256: Signer, served: Served, key: DPoPKey, **claims: Any) -> str:
    claims.setdefault("cnf", {"jkt": key.jkt})
    return sign(es256, claims_for(issuer.url, served.resource_url, scope="mcp:tools", **claims))


async def call_with_proof(served: Served, token: str, key: DPoPKey) -> httpx.Response:
    headers = {
        **LEGACY_HEADERS,
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("POST", served.resource_url, access_token=token),
    }
    async with httpx.AsyncClient() as client:
        return await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)


async def test_replay_memory_outage_is_503_not_500(issuer: IssuerStandIn, es256: Signer) -> None:
    """Redis (the replicas' shared jti memory, §11.1) is down: the proof cannot be checked for replay.
    Fail closed, but as the kit's other outages do (503, Retry-After), never a 500."""
    async with serve_protected(issuer.url, dpop_redis_url=UNREACHABLE_REDIS) as served:
        key = DPoPKey.generate()
        response = await call_with_proof(served, bound(issuer, es256, served, key), key)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert served.notes.executed == []
