"""Opt-in token introspection (RFC 7662) after the local check, for servers where revocation must bite now.

A JWT access token stays valid until it expires (15 minutes by default), even after the user
revokes the application or the client revokes the token. A resource server that cannot accept
that asks the auth service as well: `IntrospectingVerifier` first verifies the token locally,
exactly like `JWTVerifier` (so a forged or foreign token never costs a network call), then asks
the metadata's `introspection_endpoint` with the server's own client credentials (HTTP Basic,
RFC 7662 §2.1), and remembers the answer for `cache_ttl` seconds — never past the token's `exp`.
So a revoked token is refused within `cache_ttl` seconds, at the price of one introspection per
token and TTL. Answers are per token and shared by concurrent requests (one call in flight each).

`active: false` is `invalid_token` (401). When the auth service cannot answer (down, timing out,
refusing our credentials, malformed answers) the request fails closed with
`IntrospectionUnavailable`, which the guard answers with 503 and `Retry-After`: the token may
well be valid, so a 401 would wrongly send the client back through authorization.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from mcp.server.auth.provider import AccessToken
from prometheus_client import Counter

from mcp_auth_kit.availability import VerificationUnavailable
from mcp_auth_kit.client_credentials import ClientCredentials, PrivateKeyJWT
from mcp_auth_kit.expiring_lru import ExpiringLRU
from mcp_auth_kit.jwks import JWKSCache
from mcp_auth_kit.rfc8414_discovery import DiscoveryError, discover_endpoint
from mcp_auth_kit.rfc9068_verifier import (
    DEFAULT_ALGORITHMS,
    RFC9068_REQUIRED_CLAIMS,
    InvalidToken,
    JWTVerifier,
)

logger = logging.getLogger(__name__)

INTROSPECTIONS = Counter("mcp_auth_introspections_total", "Token introspection calls by outcome", ["outcome"])
DEFAULT_CACHE_TTL = 15.0


class IntrospectionUnavailable(VerificationUnavailable):
    """The auth service could not say whether the token is active; the request fails closed (503)."""


@dataclass(frozen=True)
class Introspection:
    """`protect(..., introspection=Introspection(client_id, client_secret))`: this server's own client;
    `Introspection(client_id, private_key=PrivateKeyJWT...)` for one that authenticates with its key."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    cache_ttl: float = DEFAULT_CACHE_TTL
    private_key: PrivateKeyJWT | None = field(default=None, repr=False)


class IntrospectingVerifier(JWTVerifier):
    """`JWTVerifier` plus an RFC 7662 check at the auth service, cached for a few seconds per token."""

    def __init__(
        self,
        *,
        issuer: str,
        resource_url: str,
        client_id: str,
        client_secret: str | None = None,
        private_key: PrivateKeyJWT | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        introspection_endpoint: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        jwks: JWKSCache | None = None,
        internal_url: str | None = None,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        required_claims: Sequence[str] = RFC9068_REQUIRED_CLAIMS,
        cache_size: int = 10_000,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < cache_ttl <= 300:
            raise ValueError("cache_ttl must be more than 0 and at most 300 seconds")
        super().__init__(
            issuer=issuer,
            resource_url=resource_url,
            jwks=jwks,
            internal_url=internal_url,
            algorithms=algorithms,
            leeway=leeway,
            required_claims=required_claims,
            cache_size=cache_size,
            now=now,
        )
        self.cache_ttl = cache_ttl
        self._endpoint = introspection_endpoint
        self._internal_url = internal_url
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        # RFC 7662 §2.1: the caller authenticates, with a secret or its private key (client_credentials.py).
        self._credentials = ClientCredentials(client_id, client_secret, private_key)
        # Keyed by a digest, so the cache holds no second copy of anyone's bearer token.
        self._answers: ExpiringLRU[bytes, bool] = ExpiringLRU(cache_size)
        self._in_flight: dict[bytes, asyncio.Future[bool]] = {}

    async def verify(self, token: str) -> AccessToken:
        access_token = await super().verify(token)  # signature, issuer, audience, expiry: locally
        if not await self._active(token, access_token):
            raise InvalidToken("the authorization server reports the token inactive (revoked)")
        return access_token

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
        await super().aclose()

    async def _active(self, token: str, access_token: AccessToken) -> bool:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._answers.get(key, self._now())
        if cached is not None:
            INTROSPECTIONS.labels("cached").inc()
            return cached
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._introspect_and_remember(key, token, access_token.expires_at))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget_in_flight(key, done))
        # Shielded: a request that gives up does not cancel the answer other requests are waiting for.
        return await asyncio.shield(task)

    async def _introspect_and_remember(self, key: bytes, token: str, expires_at: int | None) -> bool:
        active = await self._introspect(token)
        now = self._now()
        # An inactive answer is cached just as briefly: it may come from a replica that has not yet
        # loaded a newly rotated key, and must not lock a valid token out until it expires.
        until = now + self.cache_ttl if expires_at is None else min(now + self.cache_ttl, expires_at)
        self._answers.put(key, active, until)
        return active

    def _forget_in_flight(self, key: bytes, done: asyncio.Future[bool]) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, so a failure nobody awaited any more is not reported as lost

    async def _introspect(self, token: str) -> bool:
        """RFC 7662 §2.1 request, §2.2 response; anything but a JSON object with a boolean `active` fails."""
        form, headers = self._credentials.authenticate(
            {"token": token, "token_type_hint": "access_token"}, self.issuer
        )
        try:
            response = await self._client.post(
                await self._introspection_endpoint(),
                data=form,
                headers={**headers, "Accept": "application/json"},
            )
            body: Any = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            INTROSPECTIONS.labels("unavailable").inc()
            raise IntrospectionUnavailable(f"introspection failed: {type(exc).__name__}") from None
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            INTROSPECTIONS.labels("unavailable").inc()
            # 401/403 here means this server's own credentials are wrong: loud, since every call fails.
            logger.error("token introspection answered %s", response.status_code)
            raise IntrospectionUnavailable(f"introspection answered {response.status_code}")
        active: bool = body["active"]
        INTROSPECTIONS.labels("active" if active else "inactive").inc()
        return active

    async def _introspection_endpoint(self) -> str:
        if self._endpoint is None:
            try:
                self._endpoint = await discover_endpoint(
                    self._client, self.issuer, "introspection_endpoint", self._internal_url
                )
            except DiscoveryError as exc:
                raise IntrospectionUnavailable(str(exc)) from None
        return self._endpoint
