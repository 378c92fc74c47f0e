"""Single-use identifiers shared by every replica: "has this `jti` been seen before?".

DPoP proofs (RFC 9449 §11.1), JWT assertions and `private_key_jwt` client assertions (RFC 7523 §3,
item 7) must each be accepted once. A per-process memory would let a replay succeed on the next
replica, so the answer lives where every replica looks: Redis when AUTH_REDIS_URL is set (one
`SET NX EXAT`, the kit's `RedisReplayCache`, which MCP servers use too), otherwise the database (an
insert that a primary key makes single-winner).

An identifier is remembered until `expires_at`, the moment after which the credential carrying it
would be refused anyway; housekeeping prunes the database's expired rows.

The database variant runs its own short transaction on a pooled connection. Call `first_use` while
the request holds no connection (before the request's session begins), as `/token` does: a request
holding one connection and waiting for a second can deadlock a full pool.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_auth_kit.replay_cache import RedisReplayCache, ReplayCache, ReplayCacheUnavailable, replay_key
from mcp_auth_server.db.models import UsedIdentifier

__all__ = ["DatabaseReplayCache", "RedisReplayCache", "ReplayCache", "ReplayCacheUnavailable"]


class DatabaseReplayCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def first_use(self, namespace: str, identifier: str, expires_at: int) -> bool:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(UsedIdentifier).values(
                        key=replay_key(namespace, identifier), expires_at=expires_at
                    )
                )
        except IntegrityError:
            return False
        return True
