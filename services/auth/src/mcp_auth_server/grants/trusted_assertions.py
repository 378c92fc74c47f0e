"""Verifying a JWT from a trusted issuer and spending its `jti`: shared by every path that accepts one.

The JWT-bearer grant (grants/jwt_bearer.py) uses it for ID-JAGs and workload tokens; client
authentication may use it for a workload token standing in for a client's own credential. Both are
called before the request's transaction: the issuer's keys may be fetched over the network and the
database replay cache takes a pooled connection of its own (store/replay_cache.py).
"""

from __future__ import annotations

from mcp_auth_kit.jwks import JWKSCache, KeysUnavailable
from mcp_auth_server.clock import now
from mcp_auth_server.oauth.rfc7523_jwt_bearer import (
    InvalidAssertion,
    UnknownSigningKey,
    VerifiedAssertion,
    parse_assertion,
    verify_assertion,
)
from mcp_auth_server.oauth.trusted_issuers import WORKLOAD, IssuerKind
from mcp_auth_server.runtime import Runtime

REPLAY_NAMESPACE = "jwt-grant"


def accepted_audiences(runtime: Runtime, kind: IssuerKind, configured: str | None) -> list[str]:
    """ID-JAG: our issuer exactly (its processing rules). Workload: the issuer's configured audience, else
    our issuer or our token endpoint (the WIF extension names the token endpoint; SDKs send the issuer)."""
    issuer = runtime.settings.auth_issuer
    if kind == WORKLOAD:
        return [configured] if configured is not None else [issuer, runtime.url("/token")]
    return [issuer]


async def verify_trusted_assertion(
    runtime: Runtime, assertion: str, *, kind: IssuerKind | None = None
) -> VerifiedAssertion:
    """The assertion checked against its (trusted) issuer's rules and keys.

    Raises InvalidAssertion (answer `invalid_grant`, or `invalid_client` when authenticating a client), or
    KeysUnavailable when the issuer's keys have never been loaded (answer 503 `temporarily_unavailable`).
    """
    await runtime.trusted_issuers.refresh_if_stale()
    parsed = parse_assertion(assertion)
    config = runtime.trusted_issuers.get(parsed.issuer)
    if config is None:
        raise InvalidAssertion("the assertion's issuer is not trusted here")
    if kind is not None and config.kind != kind:
        raise InvalidAssertion(f"the assertion's issuer is not a trusted {kind} issuer")
    keys = runtime.trusted_issuers.keys(config)
    audiences = accepted_audiences(runtime, config.kind, config.audience)
    try:
        return await verify_assertion(parsed, config, keys, audiences=audiences, now=now())
    except UnknownSigningKey:
        if isinstance(keys, JWKSCache) and not keys.loaded:
            raise keys.unavailable() from None
        raise


async def spend(runtime: Runtime, verified: VerifiedAssertion) -> bool:
    """RFC 7523 §3 item 7: accept each `jti` of an issuer once, on every replica; False for a replay.

    An issuer configured with `single_use: false` (Kubernetes re-uses projected tokens) is not tracked."""
    jti = verified.jti
    if jti is None or not verified.issuer.single_use:
        return True
    return await runtime.replay.first_use(
        REPLAY_NAMESPACE, f"{verified.issuer.issuer}#{jti}", verified.refused_after
    )


__all__ = ["InvalidAssertion", "KeysUnavailable", "VerifiedAssertion", "spend", "verify_trusted_assertion"]
