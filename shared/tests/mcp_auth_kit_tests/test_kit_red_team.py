"""Red-team findings against the kit (token checks, DPoP): one attack per test, named after it."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mcp_auth_kit.dpop_client import DPoPKey
from mcp_auth_kit.replay_cache import MemoryReplayCache
from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProofVerifier, InvalidDPoPProof
from mcp_testing.dpop_proofs import craft

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


def _rsa_key_with_exponent(bits: int) -> rsa.RSAPrivateKey:
    """A genuine RSA key pair whose public exponent has `bits` bits (cryptography only generates 65537)."""
    base = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    p, q = base.p, base.q
    phi = (p - 1) * (q - 1)
    e = (1 << (bits - 1)) | 1
    while math.gcd(e, phi) != 1:
        e += 2
    d = pow(e, -1, phi)
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def test_an_rsa_proof_key_with_a_huge_exponent_is_refused() -> None:
    """Anyone may send /token a proof: a jwk whose exponent is as long as its modulus makes each
    signature check cost a private-key operation (~100x an ordinary proof), for free. FIPS 186-4
    B.3.1 keeps e below 2^256; a real client's key (65537) is far below that."""
    expensive = _rsa_key_with_exponent(2000)
    verifier = DPoPProofVerifier(replay=MemoryReplayCache(), replay_namespace="test")
    with pytest.raises(InvalidDPoPProof, match="exponent"):
        verifier.check(craft(expensive, "RS256"), method="POST", url="https://as.example.com/token")
    ordinary = craft(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    assert verifier.check(ordinary, method="POST", url="https://as.example.com/token").jkt


async def test_a_proof_replayed_to_a_replica_whose_clock_lags_is_refused() -> None:
    """Replicas share the jti memory (Redis: it forgets by its own clock), but judge `iat` by theirs.
    A replica 5 s behind still accepts a proof 5 s after the shared memory would have forgotten it,
    if the memory keeps it only for as long as a replica on time would accept it: replay it there
    then. The verifier tolerates clocks up to its max_future apart, so the memory must too."""
    issued = 1_000_000
    shared_clock = [float(issued)]
    shared = MemoryReplayCache(now=lambda: shared_clock[0])
    on_time = DPoPProofVerifier(replay=shared, replay_namespace="s", now=lambda: shared_clock[0])
    lagging = DPoPProofVerifier(replay=shared, replay_namespace="s", now=lambda: shared_clock[0] - 5)
    proof = craft(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", claims={"iat": issued}
    )
    await on_time.verify(proof, method="POST", url="https://as.example.com/token")
    shared_clock[0] = issued + 63  # on_time refuses it as too old by now; the lagging replica does not
    with pytest.raises(InvalidDPoPProof, match="already used"):
        await lagging.verify(proof, method="POST", url="https://as.example.com/token")


def _b64_json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", [["ES256"], {"ES256": 1}])
async def test_an_access_token_whose_alg_is_not_a_string_is_invalid_token_not_a_500(
    served: Served, alg: Any
) -> None:
    """Anyone can send any JWS header: an `alg` that is a JSON array or object reached a dict lookup
    (unhashable: TypeError) and every kit-protected server answered 500. RFC 7515 §4.1.1: a string."""
    forged = f"{_b64_json({'alg': alg, 'typ': 'at+jwt', 'kid': 'k'})}.{_b64_json({})}.AAAA"
    headers = {**LEGACY_HEADERS, "Authorization": f"Bearer {forged}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "confirmation", [{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, {"jkt": 1}, "jkt"]
)
async def test_a_token_bound_by_a_confirmation_the_kit_cannot_check_is_not_a_bearer_token(
    served: Served, issuer: IssuerStandIn, es256: Signer, confirmation: Any
) -> None:
    """A token carrying `cnf` is sender-constrained (RFC 7800 §3.1): a certificate-bound token (RFC 8705
    §3) or a malformed `jkt` was honoured as a plain bearer token, because only a string `cnf.jkt`
    counted as a binding. Whoever holds such a token must still prove what `cnf` names; the kit can
    check only `jkt` (RFC 9449 §6), so anything else is refused rather than downgraded."""
    claims = claims_for(issuer.url, served.resource_url, scope="mcp:tools", cnf=confirmation)
    headers = {**LEGACY_HEADERS, "Authorization": f"Bearer {sign(es256, claims)}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert served.notes.executed == []
