"""A resource server's DPoP parts, built from plain settings: where proofs' `jti`s are kept, and nonces.

One server's replicas must share the replay memory, or a proof replayed to the next replica passes:
with a Redis URL they share it (keys `mcp-auth-kit:used:dpop:<resource URL>:<hash>`); without one it is
this process's memory, right for a single process only. Nonces are stateless (`DPoPNonces`): replicas
agree when they share the secret.
"""

from __future__ import annotations

from mcp_auth_kit.replay_cache import MemoryReplayCache, RedisReplayCache, ReplayCache
from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces
from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProofVerifier
from mcp_auth_kit.rfc9449_dpop_resource import DPoPMode, DPoPResource

REDIS_PREFIX = "mcp-auth-kit:used:"


class DPoPReplay:
    """The replay memory of one server: in this process, or in Redis (its client closed by `aclose`)."""

    def __init__(self, redis_url: str | None = None) -> None:
        self._redis = None
        self.cache: ReplayCache
        if redis_url:
            from redis.asyncio import Redis  # the kit's `redis` extra

            self._redis = Redis.from_url(redis_url)
            self.cache = RedisReplayCache(self._redis, REDIS_PREFIX)
        else:
            self.cache = MemoryReplayCache()

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def dpop_resource(
    resource_url: str, mode: DPoPMode, replay: ReplayCache, nonce_secret: str | bytes | None = None
) -> DPoPResource:
    nonces = None
    if nonce_secret:
        secret = nonce_secret.encode() if isinstance(nonce_secret, str) else nonce_secret
        nonces = DPoPNonces(secret, context=resource_url)
    verifier = DPoPProofVerifier(replay=replay, replay_namespace=f"dpop:{resource_url}", nonces=nonces)
    return DPoPResource(resource_url=resource_url, mode=mode, verifier=verifier)
