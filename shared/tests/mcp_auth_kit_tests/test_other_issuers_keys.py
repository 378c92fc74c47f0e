"""Keys of issuers that are not our auth service (an enterprise IdP, a Kubernetes cluster): found through
OpenID Connect Discovery first, RFC 8414 metadata second, or given as a static JWK Set."""

from __future__ import annotations

import pytest

from mcp_auth_kit import JWKSCache
from mcp_auth_kit.jwks import StaticJWKS
from mcp_testing.workload_issuer import JWKS_PATH, WorkloadIssuerStandIn

from .conftest import IssuerStandIn, Signer


async def test_openid_discovery_finds_the_jwks_uri(workload_issuer: WorkloadIssuerStandIn) -> None:
    cache = JWKSCache(workload_issuer.issuer, openid_discovery=True)
    try:
        key = await cache.get(workload_issuer.state.signing_key.kid)
    finally:
        await cache.aclose()
    assert key is not None
    paths = [entry.path for entry in workload_issuer.state.requests]
    assert paths == ["/.well-known/openid-configuration", JWKS_PATH]


async def test_without_openid_configuration_rfc8414_metadata_is_used(
    issuer: IssuerStandIn, es256: Signer
) -> None:
    cache = JWKSCache(issuer.url, openid_discovery=True)
    try:
        assert await cache.get(es256.kid) is not None
    finally:
        await cache.aclose()


async def test_an_openid_configuration_naming_another_issuer_is_refused(
    workload_issuer: WorkloadIssuerStandIn,
) -> None:
    workload_issuer.state.issuer_override = "https://impostor.example"
    cache = JWKSCache(workload_issuer.issuer, openid_discovery=True)
    try:
        assert await cache.get(workload_issuer.state.signing_key.kid) is None
        assert cache.misconfigured is not None
        assert "issuer mismatch" in str(cache.problem)
    finally:
        await cache.aclose()
    assert all(entry.path != JWKS_PATH for entry in workload_issuer.state.requests)


async def test_static_keys_answer_like_the_cache(workload_issuer: WorkloadIssuerStandIn) -> None:
    keys = StaticJWKS(workload_issuer.state.jwks())
    kid = workload_issuer.state.signing_key.kid
    found = await keys.get(kid)
    assert found is not None
    assert found.kid == kid
    assert await keys.get("unknown") is None
    assert workload_issuer.state.requests == []  # nothing fetched


def test_static_keys_refuse_a_set_without_a_usable_key() -> None:
    with pytest.raises(ValueError, match="no usable signature key"):
        StaticJWKS({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]})
