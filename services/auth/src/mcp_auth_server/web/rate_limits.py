"""Rate limits on /register, /authorize and /token that an outsider cannot aim at anyone else.

What is counted (docs/security.md, Rate limits):
- Before a client has proved who it is, a request counts against its source address only. Naming a
  client id spends the sender's own budget, never the client's: nobody locks a shared client (a
  pre-registered one, claude.ai's metadata document) out by naming it. /register and /authorize are
  anonymous by nature (the browser at /authorize is not the client), so they count per address, which
  is also per client and address.
- At /token, once the client has authenticated (its secret checked), the request also counts against
  that client. A public client (`none`) never authenticates, so it counts per address only.
- At /revoke and /introspect, only refused requests (a wrong secret, an unknown client) spend the address's
  budget (the token rate), and an address that has spent it is refused before any work: guessing secrets
  or tokens there costs what it costs at /token (RFC 6749 §10.10; RFC 7662 §4, an "un-throttled"
  introspection endpoint), while a resource server that authenticates is never limited by its address
  (in introspection mode it asks about every token every few seconds).
- A client_id naming a metadata document not stored yet creates a client (a stored row) as /register
  does, so it spends the address's registration budget wherever it is named (/authorize, /token, /revoke,
  /introspect); a client already stored spends nothing.
- An IPv6 address counts by its /64, the block one subscriber usually holds: otherwise one host could
  walk through 2^64 budgets.

Counting is the `limits` library's sliding-window counter, one hit per limit per request: in Redis when
AUTH_REDIS_URL is set, so every replica draws from the same budget; otherwise in this process's memory
(one replica, `make dev`). In Redis, a busy key's units are leased a few at a time
(rate_limit_leases.py): counted before they are used, so replicas never allow more than the rate
together, at a round trip per lease rather than per request. If Redis cannot be reached (or, full,
refuses a write), checks are skipped (fail open): rate limits guard capacity, and an outage of their
store must never refuse a sign-in. The outage is logged once, shown on /metrics
(`mcp_auth_rate_limit_storage_up` 0, `mcp_auth_rate_limit_checks_skipped_total`), and the store is tried
again after a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.requests import Request

from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.settings import AuthSettings, parse_rate
from mcp_auth_server.web.rate_limit_leases import Leases

log = logging.getLogger(__name__)

ITEMS: dict[int, type[RateLimitItem]] = {
    1: RateLimitItemPerSecond,
    60: RateLimitItemPerMinute,
    3600: RateLimitItemPerHour,
}
# A rate-limit check waits at most this long for Redis (and, every connection busy, as long again for
# one, then its request is refused); after a failure the store rests this long.
STORE_TIMEOUT_SECONDS = 0.5
STORE_RETRY_SECONDS = 1.0
STORE_CONNECTIONS = 100  # per process (redis-py's default)
_NO_WAIT = contextlib.nullcontext()

STORAGE_UP = Gauge(
    "mcp_auth_rate_limit_storage_up",
    "1 while the rate limits' store (Redis with AUTH_REDIS_URL, else memory) answers; 0 while rate limiting "
    "is off because it does not",
    multiprocess_mode="livemin",
)
QUEUED_TOO_LONG = Counter(
    "mcp_auth_rate_limit_checks_queued_too_long_total",
    "Requests refused (429) because their rate-limit check waited longer than its timeout for one of the "
    "store's connections (Redis busy, not down)",
)
CHECKS_SKIPPED = Counter(
    "mcp_auth_rate_limit_checks_skipped_total",
    "Rate-limit checks skipped (the request let through unlimited) because the store was unreachable",
)


def client_ip(request: Request) -> str | None:
    """The peer address as uvicorn reports it: from `X-Forwarded-For` only when the peer is a proxy named in
    AUTH_FORWARDED_ALLOW_IPS (uvicorn's proxy-headers middleware, cli/server.py)."""
    return request.client.host if request.client else None


def address_key(host: str | None) -> str:
    """The budget an address draws on: an IPv6 address's /64; an IPv4 address (mapped or not) itself."""
    if host is None:
        return "unknown"  # no peer address (a Unix socket): everyone shares one budget rather than none
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a trusted proxy said so); still one budget per value
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Limit:
    endpoint: str  # "register", "authorize" or "token": part of every key
    item: RateLimitItem


def limit_for(endpoint: str, rate: str) -> Limit:
    count, period = parse_rate(rate)
    return Limit(endpoint, ITEMS[period](count))


class RateLimits:
    def __init__(self, settings: AuthSettings, store: FailOpenStore) -> None:
        self.enabled = settings.rate_limits_enabled
        self.register = limit_for("register", settings.auth_rate_limit_register)
        self.authorize = limit_for("authorize", settings.auth_rate_limit_authorize)
        self.token = limit_for("token", settings.auth_rate_limit_token)
        self.revoke = limit_for("revoke", settings.auth_rate_limit_token)
        self.introspect = limit_for("introspect", settings.auth_rate_limit_token)
        self._store = store

    async def check_address(self, limit: Limit, request: Request) -> None:
        """Count the request against its source address: the only budget an unauthenticated request spends."""
        await self._check(limit, "address", address_key(client_ip(request)))

    async def check_new_client(self, creates_client: bool, request: Request) -> None:
        """A request that creates a client by naming a new metadata document spends the address's
        registration budget, as /register does (a client ID is otherwise a way round that limit)."""
        if creates_client:
            await self.check_address(self.register, request)

    async def check_client(self, limit: Limit, client_id: str) -> None:
        """Count the request against a client that has just authenticated (never before: see the module)."""
        await self._check(limit, "client", client_id)

    @contextlib.asynccontextmanager
    async def refusals_counted(self, limit: Limit, request: Request) -> AsyncIterator[None]:
        """Count the request against its source address only if it is refused (an OAuthError below 500);
        an address that has spent its budget is refused (429) before the request is handled at all."""
        key = address_key(client_ip(request))
        await self._check(limit, "address", key, spend=False)
        try:
            yield
        except OAuthError as refused:
            if self.enabled and refused.status_code < 500:
                await self._store.hit(limit.item, limit.endpoint, "address", key)
            raise

    async def _check(self, limit: Limit, kind: str, key: str, *, spend: bool = True) -> None:
        """Raise 429 (with Retry-After, as OAuth JSON) when the key is over its rate."""
        if not self.enabled:
            return
        wait = await self._store.hit(limit.item, limit.endpoint, kind, key, spend=spend)
        if wait is not None:
            raise OAuthError(
                "temporarily_unavailable",
                f"too many requests; retry in {wait} s",
                429,
                {"Retry-After": str(wait)},
            )

    async def aclose(self) -> None:
        await self._store.aclose()


class FailOpenStore:
    """The limiter over its storage; while the storage is down, requests pass (and that is said once)."""

    def __init__(self, storage: Storage, redis: Redis | None = None) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._redis = redis
        # A shared budget costs a round trip per check: leases spare most of them (rate_limit_leases.py).
        # Counting in this process's memory costs none, and stays exact.
        self._leases = Leases(time.monotonic) if redis is not None else None
        # No more checks in Redis at once than its pool has connections; the others wait for one:
        # redis-py's pool refuses at once, which would pass for an outage and turn the limits off for
        # whoever keeps more checks in flight than that.
        self._connections = (
            asyncio.Semaphore(redis.connection_pool.max_connections) if redis is not None else None
        )
        self._resting_until = 0.0
        self._down = False
        STORAGE_UP.set(1)

    async def hit(self, item: RateLimitItem, *identifiers: str, spend: bool = True) -> int | None:
        """Spend one request (`spend=False`: only ask whether one could be spent); None when allowed (or
        not counted), else the seconds to wait."""
        leases = self._leases
        if leases is not None and (leases.take(identifiers) if spend else leases.has_units(identifiers)):
            return None
        connections = self._connections
        if connections is None:
            return await self._counted(item, identifiers, spend)
        try:
            async with asyncio.timeout(STORE_TIMEOUT_SECONDS) if connections.locked() else _NO_WAIT:
                await connections.acquire()
        except TimeoutError:
            # Busy, not down: the store answers everyone else. Whoever keeps this many checks queued
            # must not be served unlimited for it (nor switch the limits off for everyone), so the
            # request is refused, to be retried shortly.
            QUEUED_TOO_LONG.inc()
            return 1
        try:
            return await self._counted(item, identifiers, spend)
        finally:
            connections.release()

    async def _counted(self, item: RateLimitItem, identifiers: tuple[str, ...], spend: bool) -> int | None:
        if self._down and time.monotonic() < self._resting_until:
            CHECKS_SKIPPED.inc()
            return None
        try:
            if await (self._spend if spend else self._limiter.test)(item, *identifiers):
                wait = None
            else:
                reset_at = (await self._limiter.get_window_stats(item, *identifiers)).reset_time
                wait = max(1, math.ceil(reset_at - time.time()))
        except (StorageError, RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if self._down:
            self._down = False
            STORAGE_UP.set(1)
            log.warning("rate limits are on again: their store (AUTH_REDIS_URL) answers")
        return wait

    async def _spend(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one request in the store: as part of a lease where leases are kept."""
        leases = self._leases
        if leases is None:
            return await self._limiter.hit(item, *identifiers)
        size = leases.next_size(item, identifiers)
        if await self._limiter.hit(item, *identifiers, cost=size):
            leases.keep(item, identifiers, size)
            return True
        leases.drop(identifiers)
        # Less than a lease is left of the budget: the request may still have its one unit.
        return size > 1 and await self._limiter.hit(item, *identifiers)

    def _failed(self, exc: Exception) -> None:
        CHECKS_SKIPPED.inc()
        self._resting_until = time.monotonic() + STORE_RETRY_SECONDS
        if not self._down:
            self._down = True
            STORAGE_UP.set(0)
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            log.error(
                "rate limits are OFF: their store at AUTH_REDIS_URL failed (%s: %s); requests are "
                "served unlimited until it answers, check Redis and AUTH_REDIS_URL",
                type(cause).__name__,
                cause,
            )

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def rate_limit_store(settings: AuthSettings) -> FailOpenStore:
    """Redis when AUTH_REDIS_URL is set (its own connections: short timeouts, no retries, so an outage costs
    a request half a second at most, once a second), otherwise this process's memory."""
    if not settings.auth_redis_url or not settings.rate_limits_enabled:
        return FailOpenStore(MemoryStorage())
    redis = Redis.from_url(
        settings.auth_redis_url,
        max_connections=STORE_CONNECTIONS,
        socket_connect_timeout=STORE_TIMEOUT_SECONDS,
        socket_timeout=STORE_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    # The pool carries the URL's host, credentials and TLS (`limits` types its options as scalars only).
    pool: dict[str, Any] = {"connection_pool": redis.connection_pool}
    storage = RedisStorage(
        "async+redis://",
        implementation="redispy",
        **pool,
        key_prefix=f"mcp-auth:rate-limits:{settings.auth_issuer}",  # one budget per deployment
        wrap_exceptions=True,
    )
    return FailOpenStore(storage, redis)
