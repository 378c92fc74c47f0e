"""`private_key_jwt` client authentication: a JWT the client signs with its own key (RFC 7523 §2.2, §3;
OpenID Connect Core §9; RFC 7521 §4.2).

The request carries `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
`client_assertion=<JWT>`. The JWT is accepted when (RFC 7523 §3, each rule numbered there):
  1. `iss` and 2. `sub` are both the client's id (RFC 7523 §3 items 1-2, OIDC Core §9);
  3. `aud` names this server and nothing else: its issuer identifier, which RFC 7523bis makes the one
     value clients use (the audience-injection fix), or its token endpoint URL, which OIDC Core §9 and
     RFC 7523 §3 let older clients send. An array with other members is refused (RFC 7523bis §4);
  4. `exp` is in the future and 5. the assertion is short-lived: at most `MAX_LIFETIME` from now and
     from its `iat`, which may not lie in the future beyond `LEEWAY` (RFC 7523 §3 item 4 allows a
     server to refuse assertions too far in the future or past);
  7. its `jti` is used once (the caller records it, across replicas, until `exp`);
  9. the signature verifies with a key the client registered (its `jwks` or `jwks_uri`), chosen by the
     header's `kid`, with an asymmetric algorithm that key may use (RFC 8725 §3.1): never `none`, never
     HMAC (a "shared secret" made of the public key is the classic forgery).
Every refusal is `invalid_client` (RFC 7521 §4.2.1); the description names the rule, never a detail that
would help forge (which key was tried, what was expected).

Framework-free: the caller finds the client, passes its keys, and records the `jti`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from mcp_auth_kit.jwks import VerificationKey
from mcp_auth_server.clock import now
from mcp_auth_server.oauth.client_jwks import Registration

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
# Asymmetric JWS algorithms only (RFC 7518 §3.1); the metadata's *_auth_signing_alg_values_supported.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MAX_LIFETIME = 300  # seconds an assertion may be valid for (the SDK's SignedJWTParameters default)
LEEWAY = 30  # clock skew tolerated between the client and us
MAX_ASSERTION_LENGTH = 8 * 1024
MAX_JTI_LENGTH = 256

KeyLookup = Callable[[str | None], Awaitable[Sequence[VerificationKey]]]


class InvalidClientAssertion(Exception):
    """The assertion does not authenticate the client; the message is safe to show it."""


@dataclass(frozen=True)
class ClientAssertion:
    """A verified assertion: whose it is, the `jti` to record as used until `expires_at`, and the keys
    the client had registered when it was checked (the caller compares them again in its transaction)."""

    client_id: str
    jti: str
    expires_at: int
    registration: Registration | None = None


def assertion_subject(assertion: str) -> str | None:
    """The `sub` of an assertion not yet verified: only to find whose keys to verify it with (RFC 7521
    §4.2: the assertion's subject identifies the client, `client_id` is optional)."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        return None
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


def _usable(key: VerificationKey, algorithm: str) -> bool:
    """Whether `key` may verify `algorithm`: the JWK's own `alg` if it names one, else its key type's."""
    declared = key.jwk.get("alg")
    if declared is not None:
        return bool(declared == algorithm)
    kind = key.jwk.get("kty")
    if kind == "RSA":
        return algorithm[:2] in ("RS", "PS")
    if kind == "EC":
        return algorithm == key.algorithm  # the curve decides: P-256 is ES256 only
    return kind == "OKP" and algorithm == "EdDSA"


async def verify_client_assertion(
    assertion: str, *, client_id: str, keys: KeyLookup, audiences: Sequence[str]
) -> ClientAssertion:
    """Check `assertion` as the client `client_id`'s authentication; raise InvalidClientAssertion."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidClientAssertion("the client assertion is too long")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise InvalidClientAssertion("the client assertion is not a signed JWT") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS:
        raise InvalidClientAssertion(f"client assertions must be signed with one of {', '.join(ALGORITHMS)}")
    if kid is not None and not isinstance(kid, str):
        raise InvalidClientAssertion("the client assertion's kid must be a string")
    candidates = [key for key in await keys(kid) if _usable(key, algorithm)]
    if kid is None and len(candidates) > 1:
        # OpenID Connect Core §10.1: with several keys registered, the JWS header must name one.
        raise InvalidClientAssertion("the client registered several keys: name the signing key with kid")
    if not candidates:
        raise InvalidClientAssertion("the client assertion is not signed by a key the client registered")
    claims = _verified_claims(assertion, candidates[0], algorithm)
    return _check_claims(claims, client_id, audiences)


def _verified_claims(assertion: str, key: VerificationKey, algorithm: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key.key,
            algorithms=[algorithm],
            # Times are judged by the service's one clock (clock.py), the audience by rule 3, below.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "require": ["iss", "sub", "aud", "exp", "jti"],
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidClientAssertion(f"the client assertion has no {exc.claim} claim") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidClientAssertion("the client assertion's signature is invalid") from None
    return claims


def _check_claims(claims: dict[str, Any], client_id: str, audiences: Sequence[str]) -> ClientAssertion:
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise InvalidClientAssertion("the client assertion's iss and sub must both be the client_id")
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    if not isinstance(audience, str) or audience not in audiences:
        raise InvalidClientAssertion("the client assertion's aud must be this server's issuer identifier")
    moment = now()
    expires_at, issued_at, not_before = claims["exp"], claims.get("iat"), claims.get("nbf")
    for name, value in (("exp", expires_at), ("iat", issued_at), ("nbf", not_before)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidClientAssertion(f"the client assertion's {name} must be a NumericDate")
    if expires_at <= moment - LEEWAY:
        raise InvalidClientAssertion("the client assertion has expired")
    if expires_at > moment + MAX_LIFETIME + LEEWAY:
        raise InvalidClientAssertion(f"client assertions may be valid for at most {MAX_LIFETIME} seconds")
    if issued_at is not None:
        if issued_at > moment + LEEWAY:
            raise InvalidClientAssertion("the client assertion's iat is in the future")
        if expires_at - issued_at > MAX_LIFETIME:
            raise InvalidClientAssertion(f"client assertions may be valid for at most {MAX_LIFETIME} seconds")
    if not_before is not None and not_before > moment + LEEWAY:
        raise InvalidClientAssertion("the client assertion is not valid yet")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidClientAssertion("the client assertion's jti must be a short string")
    return ClientAssertion(client_id, jti, expires_at + LEEWAY)
