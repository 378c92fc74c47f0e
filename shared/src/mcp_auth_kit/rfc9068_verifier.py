"""Checks RFC 9068 JWT access tokens locally, exactly, and fast: the SDK's `TokenVerifier` for this kit.

JOSE parsing follows RFC 7515 compact serialization; the signature itself is checked by PyJWT's
algorithm objects over `cryptography` key objects parsed once per JWKS fetch. PyJWT's `decode`
would re-validate every base64 character in Python (~35 µs a token); one compiled regex does the same
job here. A bounded cache of verified tokens (expiring with each token) turns a reused token into a
dict lookup.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken
from prometheus_client import Counter

from mcp_auth_kit.expiring_lru import ExpiringLRU
from mcp_auth_kit.jwks import JWKSCache, VerificationKey

logger = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("ES256", "RS256", "EdDSA")
# RFC 9068 §2.2: claims every JWT access token carries.
RFC9068_REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
# RFC 7515 §7.1 compact serialization: three base64url segments without padding.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)

TOKEN_CHECKS = Counter("mcp_auth_token_checks_total", "Bearer token checks by outcome", ["outcome"])
_CACHED, _VERIFIED, _REJECTED = (TOKEN_CHECKS.labels(o) for o in ("cached", "verified", "rejected"))


class InvalidToken(Exception):
    """The bearer token is not acceptable. The message is safe to log: it never contains the token."""


@dataclass(frozen=True, slots=True)
class _Verified:
    access_token: AccessToken
    key: VerificationKey


class JWTVerifier:
    """Verifies access tokens of one issuer for one resource (an `mcp.server.auth.provider.TokenVerifier`)."""

    def __init__(
        self,
        *,
        issuer: str,
        resource_url: str,
        jwks: JWKSCache | None = None,
        internal_url: str | None = None,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        required_claims: Sequence[str] = RFC9068_REQUIRED_CLAIMS,
        cache_size: int = 10_000,
        max_token_length: int = 16_384,
        now: Callable[[], float] = time.time,
    ) -> None:
        # RFC 8725 §3.1/§3.2: an explicit allow-list; `none` and HMAC (keyed with a public key) never verify.
        if not algorithms or not set(algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(ASYMMETRIC_ALGORITHMS)}")
        self._algorithms = {name: jwt.get_algorithm_by_name(name) for name in algorithms}
        self.issuer = issuer
        self.resource_url = resource_url
        self.jwks = jwks or JWKSCache(issuer, internal_url=internal_url)
        self._leeway = leeway
        self._required_claims = tuple(required_claims)
        self._max_token_length = max_token_length
        self._now = now
        self._cache: ExpiringLRU[str, _Verified] = ExpiringLRU(cache_size)

    @property
    def ready(self) -> bool:
        return self.jwks.loaded

    async def verify_token(self, token: str) -> AccessToken | None:
        """The SDK's `TokenVerifier` protocol: the token's principal, or None when it is not acceptable.

        Raises `VerificationUnavailable` when the auth service's keys are out of reach (answer 503).
        """
        try:
            return await self.verify(token)
        except InvalidToken as exc:
            logger.info("bearer token rejected: %s", exc)
            return None

    async def verify(self, token: str) -> AccessToken:
        """The token's principal; raises `InvalidToken` saying why not."""
        now = self._now()
        hit = self._cache.get(token, now)
        if hit is not None and self.jwks.is_current(hit.key):
            _CACHED.inc()
            return hit.access_token
        try:
            verified, expires_at = await self._verify_signed_token(token, now)
        except InvalidToken:
            _REJECTED.inc()
            raise
        _VERIFIED.inc()
        self._cache.put(token, verified, expires_at + self._leeway)
        return verified.access_token

    async def aclose(self) -> None:
        await self.jwks.aclose()

    async def _verify_signed_token(self, token: str, now: float) -> tuple[_Verified, float]:
        if len(token) > self._max_token_length or not _COMPACT_JWS.fullmatch(token):
            raise InvalidToken("not a JWS in compact serialization")
        signing_input, _, signature = token.rpartition(".")
        header = _decode_json(signing_input.partition(".")[0], "header")
        alg = header.get("alg")
        # RFC 7515 §4.1.1: a string (an array or object would not even be a dict key); RFC 8725 §3.1.
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken("algorithm not allowed")
        typ = header.get("typ")
        # RFC 9068 §4: typ MUST be at+jwt (media type: case-insensitive, "application/" optional).
        if not isinstance(typ, str) or typ.lower().removeprefix("application/") != "at+jwt":
            raise InvalidToken("typ is not at+jwt")
        if "crit" in header:
            raise InvalidToken("critical header extensions are not understood")  # RFC 7515 §4.1.11
        kid = header.get("kid")
        key = await self.jwks.get(kid) if isinstance(kid, str) else None
        if key is None:
            if not self.jwks.loaded or self.jwks.problem is not None:
                # Out of reach, not wrong: the kid may be a new key we could not fetch (503, not 401).
                raise self.jwks.unavailable()
            raise InvalidToken("unknown signing key")
        if key.algorithm != alg:
            raise InvalidToken("algorithm does not match the signing key")  # RFC 8725 §3.1
        if not self._algorithms[alg].verify(signing_input.encode("ascii"), key.key, _b64decode(signature)):
            raise InvalidToken("bad signature")  # RFC 7515 §5.2
        claims = _decode_json(signing_input.partition(".")[2], "payload")
        expires_at = self._check_claims(claims, now)
        access_token = AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims.get("scope", "").split(),
            expires_at=int(expires_at),
            resource=self.resource_url,
            subject=claims["sub"],
            claims=claims,
        )
        return _Verified(access_token, key), expires_at

    def _check_claims(self, claims: Mapping[str, Any], now: float) -> float:
        """RFC 9068 §4 validation; returns the token's expiry."""
        missing = [name for name in self._required_claims if name not in claims]
        if missing:
            raise InvalidToken(f"missing claims: {', '.join(missing)}")
        if claims["iss"] != self.issuer:
            raise InvalidToken("wrong issuer")  # RFC 9068 §4: exact match with the issuer's identifier
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.resource_url not in audiences:
            raise InvalidToken("not issued for this resource")  # RFC 9068 §4, RFC 8707 §2
        for name in ("sub", "client_id", "jti"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise InvalidToken(f"{name} is not a string")
        if not isinstance(claims.get("scope", ""), str):
            raise InvalidToken("scope is not a string")  # RFC 9068 §2.2.3: space-delimited string
        expires_at = _numeric_date(claims, "exp")
        if now >= expires_at + self._leeway:
            raise InvalidToken("expired")  # RFC 7519 §4.1.4
        if "nbf" in claims and now + self._leeway < _numeric_date(claims, "nbf"):
            raise InvalidToken("not yet valid")  # RFC 7519 §4.1.5
        if now + self._leeway < _numeric_date(claims, "iat"):
            raise InvalidToken("issued in the future")  # RFC 7519 §4.1.6
        return expires_at


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("bad base64url") from exc


def _decode_json(segment: str, part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (ValueError, RecursionError) as exc:
        raise InvalidToken(f"{part} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"{part} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"{name} is not a NumericDate")
    return float(value)
