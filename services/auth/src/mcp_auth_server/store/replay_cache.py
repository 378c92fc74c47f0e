"""Single-use identifiers shared by every replica: "has this `jti` been seen before?".

DPoP proofs (RFC 9449 §11.1), JWT assertions and `private_key_jwt` client assertions (RFC 7523 §3,
item 7) must each be accepted once. A per-process memory would let a replay succeed on the next
replica, so the answer lives where every replica looks: Redis when AUTH_REDIS_URL is set (one
`SET NX EXAT`), otherwise the database (an insert that a primary key makes single-winner).

An identifier is remembered until `expires_at`, the moment after which the credential carrying it
would be refused anyway; housekeeping prunes the database's expired rows.

The database variant runs its own short transaction on a pooled connection. Call `first_use` while
the request holds no connection (before the request's session begins), as `/token` does: a request
holding one connection and waiting for a second can deadlock a full pool.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.db.models import UsedIdentifier


def _key(namespace: str, identifier: str) -> str:
    # Hashed: an identifier is attacker-chosen text of any length; its hash fits the column and the key.
    return f"{namespace}:{hash_secret(identifier)}"


class ReplayCache(Protocol):
    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        """True the first time (`namespace`, `identifier`) is presented, False on every later call."""
        ...


class RedisReplayCache:
    def __init__(self, redis: Redis, prefix: str = "mcp-auth:used:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        # EXAT must lie ahead: a credential expiring this very second is still remembered for one.
        expiry = max(expires_at, now() + 1)
        stored = await self._redis.set(self._prefix + _key(namespace, identifier), 1, nx=True, exat=expiry)
        return bool(stored)


class DatabaseReplayCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(UsedIdentifier).values(key=_key(namespace, identifier), expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True
