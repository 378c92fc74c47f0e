"""An OpenID provider's metadata and signing keys, fetched with httpx and cached, never blocking the loop.

Discovery (OIDC Discovery 1.0 §4) happens lazily and is re-read every hour, so the service starts
even while the provider is down. The JWKS is cached too and re-read when an ID token names a key it
does not hold (the provider rotated its keys), at most once a minute, so forged `kid`s cannot make
us hammer the provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
import jwt

from mcp_auth_server.upstreams.base import UpstreamRejected, UpstreamUnavailable
from mcp_auth_server.upstreams.http import request_json

METADATA_TTL = 3600.0
JWKS_TTL = 3600.0
JWKS_MIN_REFETCH = 60.0
# RFC 7518 §3.1 names; which `alg` needs which `kty` (RFC 7517 §4.1).
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

T = TypeVar("T")


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_signing_alg_values_supported: tuple[str, ...]
    token_endpoint_auth_methods_supported: tuple[str, ...]


def parse_metadata(document: Any, issuer: str, provider: str) -> ProviderMetadata:
    """The discovery document, refused unless its `issuer` is exactly ours (OIDC Discovery §4.3)."""
    if not isinstance(document, dict):
        raise UpstreamUnavailable(f"{provider}'s discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        # A mismatch is a misconfiguration or an impersonation attempt (§4.3, §7.2): never proceed.
        raise UpstreamUnavailable(
            f"{provider}'s discovery document names issuer {document.get('issuer')!r}, not {issuer!r}"
        )

    def url(name: str, required: bool = True) -> str | None:
        value = document.get(name)
        if value is None and not required:
            return None
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("https", urlsplit(issuer).scheme) or not parts.hostname:
            raise UpstreamUnavailable(f"{provider}'s discovery document has no usable {name}")
        return str(value)

    def names(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = document.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise UpstreamUnavailable(f"{provider}'s discovery document has a malformed {name}")
        return tuple(value)

    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=str(url("authorization_endpoint")),
        token_endpoint=str(url("token_endpoint")),
        jwks_uri=str(url("jwks_uri")),
        userinfo_endpoint=url("userinfo_endpoint", required=False),
        # REQUIRED by Discovery §3; RS256 "MUST be included" there, so it is the fallback.
        id_token_signing_alg_values_supported=names("id_token_signing_alg_values_supported", ("RS256",)),
        # Discovery §3: "If omitted, the default is client_secret_basic".
        token_endpoint_auth_methods_supported=names(
            "token_endpoint_auth_methods_supported", ("client_secret_basic",)
        ),
    )


class _Cached(Generic[T]):
    """One value fetched on demand, kept for `ttl` seconds; concurrent callers share one fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._value: T | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def age(self) -> float:
        return time.monotonic() - self._fetched_at

    async def get(self, *, refetch: bool = False) -> T:
        async with self._lock:
            if self._value is None or refetch or self.age >= self._ttl:
                self._value = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._value


class OidcProviderClient:
    """Discovery and JWKS of one issuer."""

    def __init__(self, http: httpx.AsyncClient, issuer: str, provider: str) -> None:
        self._http = http
        self._issuer = issuer
        self._provider = provider
        self._metadata = _Cached(self._fetch_metadata, METADATA_TTL)
        self._jwks = _Cached(self._fetch_jwks, JWKS_TTL)

    async def metadata(self) -> ProviderMetadata:
        return await self._metadata.get()

    async def signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The provider's key for an ID token header, bound to `alg` (so the header cannot pick another)."""
        keys = await self._jwks.get()
        candidates = _candidates(keys, kid, alg)
        if not candidates and kid is not None and self._jwks.age >= JWKS_MIN_REFETCH:
            candidates = _candidates(await self._jwks.get(refetch=True), kid, alg)
        if kid is None and len(candidates) > 1:
            # OIDC Core §10.1: with several keys published, the JOSE header MUST carry a kid.
            raise UpstreamRejected("the ID token names no key and the provider publishes several")
        if not candidates:
            raise UpstreamRejected(f"the ID token is signed with a key the provider does not publish ({kid})")
        try:
            return jwt.PyJWK(candidates[0], algorithm=alg)
        except jwt.PyJWTError:
            raise UpstreamRejected(f"the provider's key {kid} cannot verify {alg}") from None

    async def _fetch_metadata(self) -> ProviderMetadata:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"  # Discovery §4
        document = await request_json(self._http, self._provider, "GET", url)
        return parse_metadata(document, self._issuer, self._provider)

    async def _fetch_jwks(self) -> list[dict[str, Any]]:
        metadata = await self.metadata()
        document = await request_json(self._http, self._provider, "GET", metadata.jwks_uri)
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise UpstreamUnavailable(f"{self._provider}'s JWKS is malformed")
        return [key for key in keys if isinstance(key, dict)]


def _candidates(keys: list[dict[str, Any]], kid: str | None, alg: str) -> list[dict[str, Any]]:
    """Signing keys (RFC 7517 §4.2 `use`) of the type `alg` needs, matching `kid` when one is named."""
    return [
        key
        for key in keys
        if key.get("use", "sig") == "sig"
        and key.get("kty") == KEY_TYPES.get(alg[:2])
        and key.get("alg", alg) == alg
        and (kid is None or key.get("kid") == kid)
    ]
