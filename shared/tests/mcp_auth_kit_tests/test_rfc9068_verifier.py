"""Forged, misdirected and stale tokens are refused; genuine ones are verified once, then cached."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio

from mcp_auth_kit import InvalidToken, JWTVerifier
from mcp_auth_kit.rfc9068_verifier import TOKEN_CHECKS

from .conftest import IssuerStandIn, Mint, Signer, make_signer, resource_url, sign


@pytest_asyncio.fixture
async def verifier(issuer: IssuerStandIn) -> AsyncIterator[JWTVerifier]:
    checker = JWTVerifier(issuer=issuer.url, resource_url=resource_url())
    yield checker
    await checker.aclose()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


async def assert_rejected(verifier: JWTVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await verifier.verify(token)
    assert await verifier.verify_token(token) is None


# --- forged signatures and algorithms (RFC 8725 §3.1) ---


async def test_alg_none_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    header, claims, _ = segments(mint())
    unsigned = f"{b64(json.dumps({**header, 'alg': 'none'}).encode())}.{b64(json.dumps(claims).encode())}."
    await assert_rejected(verifier, unsigned, "compact serialization")
    await assert_rejected(verifier, unsigned + "AAAA", "algorithm not allowed")


async def test_hs256_keyed_with_the_public_key_is_refused(
    verifier: JWTVerifier, issuer: IssuerStandIn, rs256: Signer, es256: Signer
) -> None:
    claims = jwt.decode(sign(es256, _claims(issuer)), options={"verify_signature": False})
    for signer in (rs256, es256):
        forged = _hmac_token(claims, signer.public_pem(), kid=signer.kid)
        await assert_rejected(verifier, forged, "algorithm not allowed")


async def test_alg_must_match_the_key_not_the_token(verifier: JWTVerifier, mint: Mint, rs256: Signer) -> None:
    # An RS256 signature presented under the kid of the ES256 key.
    await assert_rejected(
        verifier, mint(signer=rs256, header={"kid": "es256-key"}), "does not match the signing key"
    )


async def test_unknown_kid_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    stranger = make_signer("ES256", "not-published")
    await assert_rejected(verifier, mint(signer=stranger), "unknown signing key")
    await assert_rejected(verifier, mint(header={"kid": None}), "unknown signing key")


async def test_key_of_another_issuer_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    # Another issuer's key under our kid: the signature does not verify with our key.
    other = make_signer("ES256", "es256-key")
    await assert_rejected(verifier, mint(signer=other), "bad signature")


async def test_tampered_payload_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    header, claims, signature = mint().split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    tampered = b64(json.dumps({**decoded, "scope": "mcp:tools notes:admin"}).encode())
    await assert_rejected(verifier, f"{header}.{tampered}.{signature}", "bad signature")


async def test_disallowed_algorithm_is_refused(issuer: IssuerStandIn, mint: Mint, eddsa: Signer) -> None:
    only_es256 = JWTVerifier(issuer=issuer.url, resource_url=resource_url(), algorithms=["ES256"])
    await assert_rejected(only_es256, mint(signer=eddsa), "algorithm not allowed")
    await only_es256.aclose()


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["ES256", "HS512"], []])
def test_symmetric_or_none_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="subset"):
        JWTVerifier(issuer="http://i", resource_url=resource_url(), algorithms=algorithms)


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "eyJ=.eyJ.sig",
        "e!J.eyJ.sig",
        "bm90IGpzb24.e30.c2ln",  # header is not JSON
        "WzFd.e30.c2ln",  # header is a JSON array
        "x" * 20_000,
    ],
)
async def test_malformed_tokens_are_refused(verifier: JWTVerifier, token: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_critical_header_extensions_are_refused(verifier: JWTVerifier, mint: Mint) -> None:
    await assert_rejected(verifier, mint(header={"crit": ["exp"], "exp": 1}), "critical")


# --- RFC 9068 §4 claims ---


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT+x", "application/jwt", None])
async def test_wrong_or_missing_typ_is_refused(verifier: JWTVerifier, mint: Mint, typ: str | None) -> None:
    await assert_rejected(verifier, mint(header={"typ": typ}), "typ")


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_at_jwt_media_type_is_accepted_case_insensitively(
    verifier: JWTVerifier, mint: Mint, typ: str
) -> None:
    assert (await verifier.verify(mint(header={"typ": typ}))).subject == "user-1"


@pytest.mark.parametrize("suffix", ["/", "/t", "x"])
async def test_wrong_issuer_is_refused(
    verifier: JWTVerifier, mint: Mint, issuer: IssuerStandIn, suffix: str
) -> None:
    await assert_rejected(verifier, mint(iss=issuer.url + suffix), "wrong issuer")


async def test_issuer_without_its_port_is_refused(
    verifier: JWTVerifier, mint: Mint, issuer: IssuerStandIn
) -> None:
    await assert_rejected(verifier, mint(iss=issuer.url.rsplit(":", 1)[0]), "wrong issuer")


@pytest.mark.parametrize(
    "audience",
    [
        "http://127.0.0.1:9101/mcp-other",
        "http://127.0.0.1:9101/mcp/",
        "http://127.0.0.1:9101/",
        "http://127.0.0.1:9101",
        "http://127.0.0.1:9102/mcp",
        "http://localhost:9101/mcp",
        "https://127.0.0.1:9101/mcp",
        ["http://127.0.0.1:9102/mcp"],
        [],
        {"http://127.0.0.1:9101/mcp": True},
    ],
)
async def test_token_for_another_resource_is_refused(
    verifier: JWTVerifier, mint: Mint, audience: Any
) -> None:
    await assert_rejected(verifier, mint(aud=audience), "not issued for this resource")


async def test_audience_list_containing_this_resource_is_accepted(verifier: JWTVerifier, mint: Mint) -> None:
    token = mint(aud=["http://127.0.0.1:9102/mcp", resource_url()])
    assert (await verifier.verify(token)).resource == resource_url()


async def test_expired_token_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    await assert_rejected(verifier, mint(exp=int(time.time()) - 31), "expired")


async def test_token_within_leeway_is_accepted(verifier: JWTVerifier, mint: Mint) -> None:
    assert await verifier.verify(mint(exp=int(time.time()) - 5))


async def test_not_yet_valid_token_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    await assert_rejected(verifier, mint(nbf=int(time.time()) + 120), "not yet valid")


async def test_token_issued_in_the_future_is_refused(verifier: JWTVerifier, mint: Mint) -> None:
    await assert_rejected(verifier, mint(iat=int(time.time()) + 120), "issued in the future")


@pytest.mark.parametrize("claim", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
async def test_missing_required_claim_is_refused(verifier: JWTVerifier, mint: Mint, claim: str) -> None:
    await assert_rejected(verifier, mint(**{claim: None}), f"missing claims: {claim}")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "tomorrow"),
        ("exp", True),
        ("iat", [1]),
        ("nbf", "now"),
        ("sub", 42),
        ("client_id", ""),
        ("scope", ["mcp:tools"]),
    ],
)
async def test_claims_of_the_wrong_type_are_refused(
    verifier: JWTVerifier, mint: Mint, claim: str, value: Any
) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(**{claim: value}))


# --- accepted tokens ---


@pytest.mark.parametrize("signer_name", ["es256", "rs256", "eddsa"])
async def test_genuine_tokens_verify(
    verifier: JWTVerifier, mint: Mint, request: pytest.FixtureRequest, signer_name: str
) -> None:
    token = mint(signer=request.getfixturevalue(signer_name), scope="mcp:tools github:repos")
    access = await verifier.verify(token)
    assert access.token == token
    assert access.client_id == "client-1"
    assert access.subject == "user-1"
    assert access.scopes == ["mcp:tools", "github:repos"]
    assert access.resource == resource_url()
    assert access.claims is not None
    assert access.claims["preferred_username"] == "octocat"


async def test_a_reused_token_is_served_from_the_cache(verifier: JWTVerifier, mint: Mint) -> None:
    token = mint()
    cached = TOKEN_CHECKS.labels("cached")
    verified = TOKEN_CHECKS.labels("verified")
    before = (cached._value.get(), verified._value.get())
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert second is first
    assert (cached._value.get() - before[0], verified._value.get() - before[1]) == (1, 1)


async def test_cached_token_expires_with_the_token(issuer: IssuerStandIn, mint: Mint) -> None:
    clock = [time.time()]
    checker = JWTVerifier(issuer=issuer.url, resource_url=resource_url(), leeway=0, now=lambda: clock[0])
    token = mint(iat=int(clock[0]), exp=int(clock[0]) + 60)
    await checker.verify(token)
    clock[0] += 61
    with pytest.raises(InvalidToken, match="expired"):
        await checker.verify(token)
    await checker.aclose()


async def test_cached_token_dies_with_its_key(
    verifier: JWTVerifier, mint: Mint, issuer: IssuerStandIn, rs256: Signer
) -> None:
    token = mint()
    await verifier.verify(token)
    issuer.signers = [rs256]  # the auth service drops the ES256 key
    await verifier.jwks.refresh()
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(token)


async def test_unchanged_keys_keep_cached_tokens_across_refreshes(verifier: JWTVerifier, mint: Mint) -> None:
    token = mint()
    first = await verifier.verify(token)
    await verifier.jwks.refresh()
    assert await verifier.verify(token) is first


def _claims(issuer: IssuerStandIn) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer.url,
        "sub": "u",
        "aud": resource_url(),
        "client_id": "c",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }


def _hmac_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"
