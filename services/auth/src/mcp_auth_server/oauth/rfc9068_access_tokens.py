"""JWT access tokens in the RFC 9068 profile, signed by the key ring's current key.

RFC 9068 §2.1: header `typ` is `at+jwt`; §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
`jti` are required and `auth_time` is carried when the user authenticated; §2.2.3: `scope`.
A user's token also names its grant (`grant_id`, not a secret): revoking one grant ends exactly
its own tokens wherever they are checked against us, never a sibling grant's. A token bound to a DPoP
key carries the key's thumbprint as `cnf.jkt` (RFC 9449 §6.1, RFC 7800 §3.1).
Upstream tokens never go in here: tools get them by token exchange (RFC 8693).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.signing_keys import PrivateKey

GRANT_CLAIM = "grant_id"
# The enterprise IdP whose ID-JAG a user's token was issued on (it names no grant: grants/jwt_bearer.py).
IDP_CLAIM = "idp"


class Signer(Protocol):
    @property
    def kid(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def private_key(self) -> PrivateKey: ...


def new_jti() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_in: int
    dpop_jkt: str | None = None  # the key it is bound to (RFC 9449): token_type DPoP


def issue_access_token(
    signer: Signer,
    *,
    issuer: str,
    subject: str,
    audience: str,
    client_id: str,
    scopes: list[str],
    ttl: int,
    grant_id: str | None = None,
    auth_time: int | None = None,
    profile: dict[str, Any] | None = None,
    jti: str | None = None,
    dpop_jkt: str | None = None,
) -> IssuedAccessToken:
    moment = now()
    jti = jti or new_jti()
    claims: dict[str, Any] = dict(profile or {})
    claims.update(
        iss=issuer,
        sub=subject,
        aud=audience,
        client_id=client_id,
        scope=" ".join(scopes),
        iat=moment,
        exp=moment + ttl,
        jti=jti,
    )
    if grant_id is not None:
        claims[GRANT_CLAIM] = grant_id
    if auth_time is not None:
        claims["auth_time"] = auth_time
    if dpop_jkt is not None:
        claims["cnf"] = {"jkt": dpop_jkt}
    token = jwt.encode(
        claims, signer.private_key, algorithm=signer.algorithm, headers={"typ": "at+jwt", "kid": signer.kid}
    )
    return IssuedAccessToken(token=token, jti=jti, expires_in=ttl, dpop_jkt=dpop_jkt)


class InvalidAccessToken(Exception):
    """Not an unexpired access token signed by us."""


def verify_access_token(public_keys: Mapping[str, jwt.PyJWK], token: str, issuer: str) -> dict[str, Any]:
    """Our own tokens, checked as a resource server would (RFC 9068 §4), for exchange and introspection."""
    try:
        header = jwt.get_unverified_header(token)
        key = public_keys.get(str(header.get("kid")))
        if key is None or header.get("typ") != "at+jwt" or header.get("alg") != key.algorithm_name:
            raise InvalidAccessToken("not signed by a key of ours")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            issuer=issuer,
            # Expiry is judged by the service's one clock (clock.py), below.
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidAccessToken(str(exc)) from None
    if not isinstance(claims["exp"], int) or claims["exp"] <= now():
        raise InvalidAccessToken("the token has expired")
    return claims


def audiences(claims: Mapping[str, Any]) -> list[str]:
    audience = claims["aud"]
    return [str(value) for value in audience] if isinstance(audience, list) else [str(audience)]
