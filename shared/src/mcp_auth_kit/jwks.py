"""Keeps the auth service's signing keys in memory, parsed once, so token checks never wait on the network.

Keys come from the `jwks_uri` of the issuer's RFC 8414 metadata. They are refreshed after the
`Cache-Control: max-age` the auth service sends (in the background: requests keep using the keys in
hand), re-fetched when a token names an unknown `kid` (at most once per `refetch_interval`), and kept
while the auth service is unreachable.

`start()` is the server's start-up check: an issuer whose metadata names another issuer (a trailing
slash, `localhost` for `127.0.0.1`) is a mistake that waiting cannot fix, so it raises `IssuerMismatch`;
an unreachable one is retried in the background, every log line naming the URL, while `problem`
says why the server is not ready and tokens get `KeysUnavailable` (503), not "unknown signing key".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from prometheus_client import Counter

from mcp_auth_kit.availability import VerificationUnavailable
from mcp_auth_kit.rfc7638_jwk_thumbprints import jwk_thumbprint
from mcp_auth_kit.rfc8414_discovery import (
    DiscoveryError,
    IssuerMismatch,
    discover_endpoint,
    discover_jwks_uri,
)

logger = logging.getLogger(__name__)

JWKS_FETCHES = Counter("mcp_auth_jwks_fetches_total", "JWKS fetches from the auth service", ["outcome"])
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)
# Background retries of an unreachable issuer: quick at first, then at most every 30 s.
_RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


class KeysUnavailable(VerificationUnavailable):
    """The signing keys could not be loaded (or re-fetched for a new `kid`); the message says why."""


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """A published public key and the one algorithm it may verify (RFC 8725 §3.1: not the token's pick)."""

    kid: str
    algorithm: str
    key: Any  # a `cryptography` public key object, ready for `verify`
    jwk: Mapping[str, Any]


def parse_jwks(document: Any, previous: Mapping[str, VerificationKey]) -> dict[str, VerificationKey]:
    """Turn a JWK Set into key objects, skipping keys we must not use and reusing unchanged ones."""
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw_keys, list):
        raise ValueError("JWKS document has no keys array")
    keys: dict[str, VerificationKey] = {}
    for jwk in raw_keys:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if kid is None:
            # RFC 7517 §4.5: `kid` is optional (clients' own JWKS often omit it); the key is then known
            # by its RFC 7638 thumbprint, and found for a token that names no key (`keys()`).
            kid = _thumbprint(jwk)
        if not isinstance(kid, str):
            continue
        # RFC 7517 §4.2: only signature keys; symmetric or private material never belongs in a public JWKS.
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct" or "d" in jwk:
            logger.warning("ignoring unusable JWK", extra={"kid": kid})
            continue
        if kid in keys:
            logger.warning("ignoring duplicate JWK kid", extra={"kid": kid})
            continue
        unchanged = previous.get(kid)
        if unchanged is not None and unchanged.jwk == jwk:
            keys[kid] = unchanged
            continue
        try:
            parsed = jwt.PyJWK(jwk)
            parsed.Algorithm.prepare_key(parsed.key)  # rejects, e.g., a P-384 key labelled ES256
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            logger.warning("ignoring malformed JWK", extra={"kid": kid})
            continue
        # PyJWK takes `alg` from the JWK, else infers it from kty/crv (P-256: ES256, OKP: EdDSA, RSA: RS256).
        keys[kid] = VerificationKey(kid=kid, algorithm=parsed.algorithm_name, key=parsed.key, jwk=dict(jwk))
    return keys


def _thumbprint(jwk: dict[str, Any]) -> str | None:
    try:
        return jwk_thumbprint(jwt.PyJWK(jwk).key)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None


def cache_lifetime(cache_control: str | None, default: float, minimum: float, maximum: float) -> float:
    """Seconds to keep a JWKS: its `max-age`, clamped so a careless header cannot cause a fetch storm."""
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return minimum
        match = _MAX_AGE.search(cache_control)
        if match:
            return min(max(float(match.group(1)), minimum), maximum)
    return default


class JWKSCache:
    """The signing keys of one issuer, fetched with httpx and held as parsed key objects."""

    def __init__(
        self,
        issuer: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        jwks_uri: str | None = None,
        internal_url: str | None = None,
        default_max_age: float = 300.0,
        min_max_age: float = 10.0,
        max_max_age: float = 86400.0,
        refetch_interval: float = 10.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        openid_discovery: bool = False,
    ) -> None:
        self.issuer = issuer
        # Another party's issuer (an enterprise IdP, a cluster): OpenID Connect Discovery first.
        self._openid_discovery = openid_discovery
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._jwks_uri = jwks_uri
        self._internal_url = internal_url  # where to reach the issuer, if not at its public URL
        self._default_max_age = default_max_age
        self._min_max_age = min_max_age
        self._max_max_age = max_max_age
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._loaded = False
        self._expires_at = 0.0
        # Failed fetches back off; unknown-kid refetches are rate-limited among themselves only, so a
        # routine fetch just before a rotation never delays learning the new key.
        self._last_failure = float("-inf")
        self._last_kid_refetch = float("-inf")
        self._generation = 0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._problem: DiscoveryError | None = None

    @property
    def loaded(self) -> bool:
        """True once a JWKS has been fetched successfully (the resource server's readiness)."""
        return self._loaded

    @property
    def problem(self) -> str | None:
        """Why the last fetch failed (naming the URL), or None when it succeeded: `/readyz` says this."""
        return None if self._problem is None else str(self._problem)

    @property
    def misconfigured(self) -> IssuerMismatch | None:
        """The issuer mismatch the last fetch found, if that is why it failed."""
        return self._problem if isinstance(self._problem, IssuerMismatch) else None

    async def start(self) -> None:
        """Start-up: load the keys; raise `IssuerMismatch` at once; keep retrying an unreachable issuer."""
        if await self.ensure_loaded():
            return
        if self.misconfigured is not None:
            raise self.misconfigured
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry_until_loaded())

    def unavailable(self) -> KeysUnavailable:
        """The error for a token whose key we cannot look up now (no keys yet, or the last fetch failed)."""
        return KeysUnavailable(self.problem or f"the signing keys of {self.issuer} are not loaded yet")

    def is_current(self, key: VerificationKey) -> bool:
        """Whether `key` is still published: a cached token dies with its key when the auth service drops it.

        Unchanged keys keep their identity across refreshes (see `parse_jwks`).
        """
        return self._keys.get(key.kid) is key

    async def get(self, kid: str) -> VerificationKey | None:
        """The key for `kid`, fetching the JWKS first if none is loaded or the `kid` is new to us."""
        now = self._clock()
        if not self._loaded:
            await self._refresh_if_due(now)
        elif now >= self._expires_at:
            self._refresh_in_background()
        key = self._keys.get(kid)
        if key is None and self._loaded and now - self._last_kid_refetch >= self._refetch_interval:
            # A new kid usually means the auth service rotated keys; rate-limited so junk kids cannot DoS it.
            self._last_kid_refetch = now
            await self._refresh_if_due(now)
            key = self._keys.get(kid)
        return key

    async def keys(self) -> list[VerificationKey]:
        """Every key in hand (fetched first if none is loaded): for a token that names no `kid`, which
        its issuer may send when it publishes a single key (OpenID Connect Core §10.1)."""
        now = self._clock()
        if not self._loaded:
            await self._refresh_if_due(now)
        elif now >= self._expires_at:
            self._refresh_in_background()
        return list(self._keys.values())

    async def ensure_loaded(self) -> bool:
        """Try to load the keys (respecting the retry interval) and say whether any are loaded."""
        if not self._loaded:
            await self._refresh_if_due(self._clock())
        return self._loaded

    async def refresh(self) -> None:
        """Fetch the JWKS now; on failure keep the current keys and raise."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # another task fetched while we waited for the lock
            try:
                await self._fetch()
            except DiscoveryError as exc:
                self._problem = exc
                JWKS_FETCHES.labels("error").inc()
                self._last_failure = self._clock()
                # Keep serving the keys we have; try again after the retry interval.
                self._expires_at = self._clock() + self._refetch_interval
                raise
            finally:
                self._generation += 1
            self._problem = None
            JWKS_FETCHES.labels("ok").inc()

    async def aclose(self) -> None:
        for task in (self._background, self._retrying):
            if task is not None:
                task.cancel()
        if self._owns_client:
            await self._client.aclose()

    async def _refresh_if_due(self, now: float) -> None:
        if not self._lock.locked() and now - self._last_failure < self._refetch_interval:
            return
        try:
            await self.refresh()
        except DiscoveryError as exc:
            logger.warning("signing keys not refreshed (keeping %d): %s", len(self._keys), exc)

    async def _retry_until_loaded(self) -> None:
        attempt = 0
        while not self._loaded:
            delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
            logger.warning("auth service not usable yet, retrying in %.0f s: %s", delay, self.problem)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self.refresh()
            except DiscoveryError:
                continue
            logger.info("signing keys of %s loaded", self.issuer)

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(self._refresh_if_due(self._clock()))

    async def _fetch(self) -> None:
        if self._jwks_uri is None and self._openid_discovery:
            self._jwks_uri = await discover_jwks_uri(self._client, self.issuer)
        elif self._jwks_uri is None:
            self._jwks_uri = await discover_endpoint(
                self._client, self.issuer, "jwks_uri", self._internal_url
            )
        url = self._jwks_uri
        try:
            response = await self._client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = parse_jwks(response.json(), self._keys)
        except httpx.HTTPStatusError as exc:
            raise DiscoveryError(f"cannot fetch {url}: HTTP {exc.response.status_code}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise DiscoveryError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc
        lifetime = cache_lifetime(
            response.headers.get("cache-control"), self._default_max_age, self._min_max_age, self._max_max_age
        )
        self._keys = keys
        self._loaded = True
        self._expires_at = self._clock() + lifetime


class StaticJWKS:
    """A JWK Set given in configuration (an issuer we cannot reach): the same `get` as `JWKSCache`."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(dict(document), {})
        if not self._keys:
            raise ValueError("the JWK Set holds no usable signature key")

    async def get(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)
