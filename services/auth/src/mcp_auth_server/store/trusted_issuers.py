"""The trusted token issuers (AUTH_TRUSTED_ISSUERS plus the CLI's) and their signing keys.

Held in memory and reloaded every few seconds like the resources, so a token request never queries
for them and an issuer added with `mcp-auth issuers add` reaches every replica quickly. Each issuer's
keys are the kit's `JWKSCache` (the same code MCP servers use for our keys: cached for the JWKS's
`max-age`, an unknown `kid` re-fetched at most every 10 s, kept while the issuer is unreachable) or,
for an issuer configured with a static `jwks`, the kit's `StaticJWKS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_kit.jwks import JWKSCache, StaticJWKS
from mcp_auth_server.db.models import TrustedIssuer
from mcp_auth_server.oauth.rfc7523_jwt_bearer import KeySource
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig

log = logging.getLogger(__name__)
# An unknown `kid` (a rotation at the issuer) is looked up again at most this often.
KID_REFETCH_SECONDS = 10.0


def merged(
    rows: Sequence[TrustedIssuer], configured: Sequence[TrustedIssuerConfig]
) -> dict[str, TrustedIssuerConfig]:
    """Issuers added with the CLI, overridden by those in AUTH_TRUSTED_ISSUERS, by issuer URL."""
    by_issuer: dict[str, TrustedIssuerConfig] = {}
    for row in rows:
        try:
            by_issuer[row.issuer] = TrustedIssuerConfig.model_validate(row.config)
        except ValidationError as exc:  # written by an older or newer version: skip it, say so
            log.warning("trusted issuer %s is not usable: %s", row.issuer, exc.errors()[0]["msg"])
    by_issuer.update({config.issuer: config for config in configured})
    return by_issuer


class TrustedIssuerRegistry:
    RELOAD_SECONDS = 5.0

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        configured: Sequence[TrustedIssuerConfig],
        http: httpx.AsyncClient,
    ) -> None:
        self._sessions = sessions
        self._configured = list(configured)
        self._http = http
        self._by_issuer = {config.issuer: config for config in self._configured}
        self._keys: dict[str, tuple[TrustedIssuerConfig, KeySource]] = {}
        self._loaded_at = 0.0
        self._reloading = asyncio.Lock()

    async def load(self, session: AsyncSession | None = None) -> None:
        if session is None:
            async with self._sessions() as own:
                rows = (await own.scalars(select(TrustedIssuer))).all()
        else:
            rows = (await session.scalars(select(TrustedIssuer))).all()
        self._by_issuer = merged(rows, self._configured)
        self._loaded_at = time.monotonic()

    async def refresh_if_stale(self) -> None:
        """Reload if older than RELOAD_SECONDS, on a connection of its own: call it while the request
        holds none (before its transaction), as the token endpoint does. One reload at a time: this runs
        before anything is authenticated, so concurrent requests wait for it (holding no connection)
        instead of each taking a pooled connection to reload the same list."""
        if not self._stale():
            return
        async with self._reloading:
            if self._stale():
                await self.load()

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.RELOAD_SECONDS

    async def current(self, session: AsyncSession, issuer: str) -> TrustedIssuerConfig | None:
        """`get`, reloaded first with the request's own session if stale: for checks made inside a
        transaction (whether a token's IdP is still trusted), which must not take a second connection."""
        if self._stale():
            await self.load(session)
        return self.get(issuer)

    def all(self) -> list[TrustedIssuerConfig]:
        return sorted(self._by_issuer.values(), key=lambda config: config.issuer)

    def get(self, issuer: str) -> TrustedIssuerConfig | None:
        """The trusted issuer named exactly `issuer` (RFC 7523 §3 item 1), or None."""
        return self._by_issuer.get(issuer)

    def keys(self, config: TrustedIssuerConfig) -> KeySource:
        """The issuer's signing keys; a changed entry (new `jwks_uri`, new static keys) starts afresh."""
        held = self._keys.get(config.issuer)
        if held is not None and held[0] == config:
            return held[1]
        source: KeySource
        if config.jwks is not None:
            source = StaticJWKS(config.jwks)
        else:
            source = JWKSCache(
                config.issuer,
                http_client=self._http,
                jwks_uri=config.jwks_uri,
                openid_discovery=True,
                refetch_interval=KID_REFETCH_SECONDS,
            )
        self._keys[config.issuer] = (config, source)
        return source

    async def aclose(self) -> None:
        for _config, source in self._keys.values():
            if isinstance(source, JWKSCache):
                await source.aclose()
