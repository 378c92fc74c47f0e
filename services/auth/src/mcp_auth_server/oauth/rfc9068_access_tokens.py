"""JWT access tokens in the RFC 9068 profile, signed by the key ring's current key.

RFC 9068 §2.1: header `typ` is `at+jwt`; §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
`jti` are required and `auth_time` is carried when the user authenticated; §2.2.3: `scope`.
Upstream tokens never go in here: tools get them by token exchange (RFC 8693).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from mcp_auth_server.store.signing_keys import KeyRing


def new_jti() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_in: int


def issue_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    subject: str,
    audience: str,
    client_id: str,
    scopes: list[str],
    ttl: int,
    auth_time: int | None = None,
    profile: dict[str, Any] | None = None,
    jti: str | None = None,
) -> IssuedAccessToken:
    now = int(time.time())
    jti = jti or new_jti()
    claims: dict[str, Any] = dict(profile or {})
    claims.update(
        iss=issuer,
        sub=subject,
        aud=audience,
        client_id=client_id,
        scope=" ".join(scopes),
        iat=now,
        exp=now + ttl,
        jti=jti,
    )
    if auth_time is not None:
        claims["auth_time"] = auth_time
    key = keyring.signer()
    token = jwt.encode(
        claims, key.private_key, algorithm=key.algorithm, headers={"typ": "at+jwt", "kid": key.kid}
    )
    return IssuedAccessToken(token=token, jti=jti, expires_in=ttl)


class InvalidAccessToken(Exception):
    """Not an unexpired access token signed by us."""


def verify_access_token(keyring: KeyRing, token: str, issuer: str) -> dict[str, Any]:
    """Our own tokens, checked as a resource server would (RFC 9068 §4), for exchange and introspection."""
    try:
        header = jwt.get_unverified_header(token)
        key = keyring.public_keys.get(str(header.get("kid")))
        if key is None or header.get("typ") != "at+jwt" or header.get("alg") != key.algorithm_name:
            raise InvalidAccessToken("not signed by a key of ours")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            issuer=issuer,
            options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidAccessToken(str(exc)) from None
    return claims
