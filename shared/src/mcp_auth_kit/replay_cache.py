"""Single-use identifiers ("has this DPoP proof's `jti` been seen?"), in memory or shared through Redis.

RFC 9449 §11.1: a server remembers each proof's `jti` for as long as the proof would be accepted, so a
captured proof cannot be played again. Replicas of one server behind a load balancer must share that
memory, or a replay succeeds at the next replica: `RedisReplayCache` (one `SET NX EXAT` per proof).
`MemoryReplayCache` serves a single process. Identifiers are attacker-chosen text of any length, so
only their SHA-256 is kept (§11.1: "store only a hash thereof").
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from mcp_auth_kit.availability import VerificationUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)


def replay_key(namespace: str, identifier: str) -> str:
    # surrogatepass: an identifier parsed from JSON may hold a lone surrogate; it is hashed, not refused
    # with an exception (a 500), and the encoding stays one-to-one.
    return f"{namespace}:{hashlib.sha256(identifier.encode('utf-8', 'surrogatepass')).hexdigest()}"


class ReplayCacheUnavailable(VerificationUnavailable):
    """The shared memory of used identifiers cannot be reached: nothing can be accepted as unused.

    Fail closed, and say so as an outage (503, retry shortly), not as a bad credential and not a 500.
    """


class ReplayCache(Protocol):
    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        """True the first time (`namespace`, `identifier`) is presented, False on every later call.

        `expires_at` (epoch seconds): after it the credential carrying the identifier is refused
        anyway, so it need not be remembered longer.
        """
        ...


# How long a check waits for one of the Redis client's connections when all are in use: enough for a
# burst to be served, not so long that a hung Redis holds ever more requests queued (then 503).
CONNECTION_WAIT_SECONDS = 1.0


class RedisReplayCache:
    """Shared by every process that uses the same Redis (and prefix)."""

    def __init__(self, redis: Redis, prefix: str = "mcp-auth:used:") -> None:
        from redis.exceptions import RedisError  # the kit's optional `redis` extra, present with a client

        self._redis = redis
        self._outage: type[Exception] = RedisError
        self._prefix = prefix
        # No more checks at once than the client's pool has connections; the others wait for one (for a
        # second at most).
        # redis-py refuses a call at once when every connection is busy (MaxConnectionsError, a
        # RedisError): whoever kept that many requests in flight would have had genuine ones refused
        # as if Redis were down.
        self._connections = asyncio.Semaphore(redis.connection_pool.max_connections)

    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        # EXAT must lie ahead: a credential expiring this very second is still remembered for one.
        expiry = max(expires_at, math.ceil(time.time()) + 1)
        try:
            async with asyncio.timeout(CONNECTION_WAIT_SECONDS):
                await self._connections.acquire()
        except TimeoutError:
            raise ReplayCacheUnavailable(
                "the replay cache (Redis) is busy: no connection came free"
            ) from None
        try:
            stored = await self._redis.set(
                self._prefix + replay_key(namespace, identifier), 1, nx=True, exat=expiry
            )
        except self._outage as exc:
            raise ReplayCacheUnavailable(
                f"the replay cache (Redis) is unavailable: {type(exc).__name__}"
            ) from exc
        finally:
            self._connections.release()
        return bool(stored)


class MemoryReplayCache:
    """One process's memory, bounded: when full of live entries it refuses (fails closed) rather than
    forgetting an identifier that could then be replayed.

    Identifiers are kept in buckets by expiry second: credentials arriving together expire together, so
    recording one is a set insert and a list append, and forgetting is dropping whole buckets (a heap
    holds the seconds, a few dozen at a time, not every identifier).
    """

    def __init__(self, max_entries: int = 200_000, now: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._now = now
        self._live: set[str] = set()
        self._buckets: dict[float, list[str]] = {}
        self._seconds: list[float] = []  # heap of the buckets' expiry times

    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        self._forget_expired(self._now())
        key = replay_key(namespace, identifier)
        if key in self._live:
            return False
        if len(self._live) >= self._max_entries:
            logger.warning("replay cache full (%d live entries): refusing a new identifier", len(self._live))
            return False
        self._live.add(key)
        bucket = self._buckets.get(expires_at)
        if bucket is None:
            self._buckets[expires_at] = bucket = []
            heapq.heappush(self._seconds, expires_at)
        bucket.append(key)
        return True

    def __len__(self) -> int:
        return len(self._live)

    def _forget_expired(self, now: float) -> None:
        while self._seconds and self._seconds[0] < now:
            self._live.difference_update(self._buckets.pop(heapq.heappop(self._seconds)))
