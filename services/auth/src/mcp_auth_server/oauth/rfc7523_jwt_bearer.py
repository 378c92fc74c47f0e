"""JWT authorization grants (RFC 7523 §2.1, §3): checking an assertion from a trusted issuer.

One check for both kinds of trusted issuer (oauth/trusted_issuers.py), with the rules of each:
- RFC 7523 §3: `iss` the trusted issuer exactly (item 1), `sub` present (2), `aud` ours (3), `exp` in
  the future (4), `iat` not in the future and the lifetime no longer than the issuer's limit (6), the
  signature by one of the issuer's current keys with an algorithm it may use (9; RFC 8725 §3.1: the
  key's algorithm, never the token's pick, never HMAC or `none`).
- ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §"Processing Rules", MCP Enterprise-Managed
  Authorization §5.1): `typ` is `oauth-id-jag+jwt` (RFC 8725 §3.11), `aud` our issuer as a string or a
  one-element array, and `client_id`, `jti` present.
- Workload identity (MCP Workload Identity Federation, SEP-1933): not an ID-JAG (`typ` absent or
  `JWT`), so neither kind of token passes as the other; `aud` our issuer, our token endpoint, or the
  audience configured for the issuer.

What the grant then does with a valid assertion (single use, users, resources, scopes) is
grants/jwt_bearer.py's. Every refusal here is `InvalidAssertion`: the token endpoint answers
`invalid_grant` (RFC 7521 §5.2) and says what was wrong without echoing anything that helps forge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from mcp_auth_kit.jwks import VerificationKey
from mcp_auth_kit.rfc7515_compact_jws import CompactJWS, MalformedJWS, json_object, split_compact
from mcp_auth_server.oauth.trusted_issuers import ENTERPRISE_IDP, TrustedIssuerConfig

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYPE = "oauth-id-jag+jwt"
# RFC 7523 §3 item 4/6 "reasonable" clock skew between us and the issuer.
LEEWAY_SECONDS = 60
MAX_ASSERTION_LENGTH = 16_384
_WORKLOAD_TYPES = (None, "jwt")


class InvalidAssertion(Exception):
    """The assertion is not a valid grant from a trusted issuer; the message says which rule failed."""


class UnknownSigningKey(InvalidAssertion):
    """No current key of the issuer has the assertion's `kid` (retired, forged, or not fetched yet)."""


class KeySource(Protocol):
    """An issuer's current public keys by `kid` (the kit's JWKSCache or StaticJWKS)."""

    async def get(self, kid: str) -> VerificationKey | None: ...


@dataclass(frozen=True)
class VerifiedAssertion:
    """An assertion whose signature and claims passed; who issued it and what it says."""

    issuer: TrustedIssuerConfig
    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def jti(self) -> str | None:
        jti = self.claims.get("jti")
        return jti if isinstance(jti, str) and jti else None

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    @property
    def refused_after(self) -> int:
        """When the assertion stops being accepted: `exp` plus the leeway `verify_assertion` allows. Its
        `jti` must be remembered until then (RFC 7523 §3 item 7), not merely until `exp`."""
        return self.expires_at + LEEWAY_SECONDS


@dataclass(frozen=True)
class ParsedAssertion:
    """An assertion split once (the kit's compact-JWS parser: PyJWT re-checks every base64 character on
    each decode), its header and claims read but nothing about them trusted yet."""

    jws: CompactJWS
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        """The `iss` it claims: only to pick the trusted issuer whose keys and rules to apply."""
        issuer = self.claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise InvalidAssertion("the assertion names no issuer (iss)")
        return issuer


def parse_assertion(assertion: str) -> ParsedAssertion:
    try:
        jws = split_compact(assertion, MAX_ASSERTION_LENGTH)
        return ParsedAssertion(
            jws, json_object(jws.header_segment, "header"), json_object(jws.payload_segment, "payload")
        )
    except MalformedJWS:
        raise InvalidAssertion("the assertion is not a JWT") from None


def media_type(value: Any) -> str | None:
    """`typ` compared as a media type (RFC 7515 §4.1.9): case-insensitive, `application/` optional."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    return lowered.removeprefix("application/")


async def verify_assertion(
    parsed: ParsedAssertion,
    issuer: TrustedIssuerConfig,
    keys: KeySource,
    *,
    audiences: Sequence[str],
    now: int,
) -> VerifiedAssertion:
    """Check `parsed` as a grant from `issuer` for one of `audiences`; raise InvalidAssertion if not."""
    header, claims = parsed.header, parsed.claims
    _check_type(header.get("typ"), issuer)
    if "crit" in header:
        raise InvalidAssertion("critical header extensions are not understood")  # RFC 7515 §4.1.11
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in issuer.algorithms:
        raise InvalidAssertion(f"the algorithm {algorithm!r} is not accepted from this issuer")
    if not isinstance(kid, str):
        raise InvalidAssertion("the assertion names no signing key (kid)")
    key = await keys.get(kid)
    if key is None:
        raise UnknownSigningKey("the assertion is not signed by a current key of its issuer")
    if key.algorithm != algorithm:
        raise InvalidAssertion("the signing key does not use the assertion's algorithm")
    verifier = jwt.get_algorithm_by_name(algorithm)
    if not verifier.verify(parsed.jws.signing_input, key.key, parsed.jws.signature):
        raise InvalidAssertion("the assertion's signature does not verify")
    if claims.get("iss") != issuer.issuer:
        raise InvalidAssertion("the assertion's issuer does not match")
    _check_claims(claims, issuer, audiences, now)
    return VerifiedAssertion(issuer, claims)


def _check_type(typ: Any, issuer: TrustedIssuerConfig) -> None:
    declared = media_type(typ)
    if issuer.kind == ENTERPRISE_IDP:
        if declared != ID_JAG_TYPE:
            raise InvalidAssertion(f"an identity assertion grant has typ {ID_JAG_TYPE}")
    elif declared not in _WORKLOAD_TYPES:
        raise InvalidAssertion("a workload token is a plain JWT (typ JWT), not a typed token of another kind")


def _check_claims(
    claims: dict[str, Any], issuer: TrustedIssuerConfig, audiences: Sequence[str], now: int
) -> None:
    for name in ("sub", "aud", "exp", "iat"):
        if name not in claims:
            raise InvalidAssertion(f"the assertion has no {name} claim")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise InvalidAssertion("the assertion's sub is not a string")
    expires_at, issued_at = _numeric_date(claims, "exp"), _numeric_date(claims, "iat")
    if expires_at <= now - LEEWAY_SECONDS:
        raise InvalidAssertion("the assertion has expired")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now + LEEWAY_SECONDS:
        raise InvalidAssertion("the assertion is not valid yet")
    audience = claims.get("aud")
    # The ID-JAG rule (an array must hold exactly one element) applied to both kinds: a token minted
    # for several audiences is not a grant for us alone.
    named = audience if isinstance(audience, list) else [audience]
    if len(named) != 1 or named[0] not in audiences:
        raise InvalidAssertion("the assertion is not for this authorization server (aud)")
    if expires_at - issued_at > issuer.lifetime_limit:
        raise InvalidAssertion(f"the assertion lives longer than {issuer.lifetime_limit} seconds")
    if issued_at > now + LEEWAY_SECONDS:
        raise InvalidAssertion("the assertion was issued in the future")
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > 512):
        raise InvalidAssertion("the assertion's jti is malformed")
    if issuer.kind == ENTERPRISE_IDP:
        if jti is None:
            raise InvalidAssertion("an identity assertion grant has a jti")
        if not isinstance(claims.get("client_id"), str):
            raise InvalidAssertion("an identity assertion grant names its client (client_id)")
    elif jti is None and issuer.single_use:
        raise InvalidAssertion("the workload token has no jti to make it single-use")


def _numeric_date(claims: dict[str, Any], name: str) -> int:
    """RFC 7519 §2 NumericDate: a JSON number (not a boolean), read as whole seconds."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 2**53:
        raise InvalidAssertion(f"the assertion's {name} is not a NumericDate")
    return int(value)
