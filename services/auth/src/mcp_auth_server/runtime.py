"""Everything a request handler needs, built once at start-up (the composition's state)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from jinja2 import Environment
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProofVerifier
from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.oauth.client_jwks import ClientKeys
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.client_resolution import ClientResolver
from mcp_auth_server.store.replay_cache import ReplayCache
from mcp_auth_server.store.resources import ResourceRegistry
from mcp_auth_server.store.signing_keys import KeyRing
from mcp_auth_server.store.trusted_issuers import TrustedIssuerRegistry
from mcp_auth_server.upstreams.base import Connector
from mcp_auth_server.web.cookies import CookiePolicy
from mcp_auth_server.web.rate_limits import RateLimits


@dataclass
class Runtime:
    settings: AuthSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    resources: ResourceRegistry
    upstream: Connector
    http: httpx.AsyncClient
    templates: Environment
    upstream_token_box: SecretBox
    upstream_request_box: SecretBox
    cookies: CookiePolicy
    clients: ClientResolver
    rate_limits: RateLimits
    replay: ReplayCache  # single-use identifiers, shared by every replica
    redis: Redis | None  # AUTH_REDIS_URL, when set
    dpop: DPoPProofVerifier  # RFC 9449 proofs at /token (jtis kept in `replay`; AUTH_DPOP_NONCES)
    client_keys: ClientKeys  # private_key_jwt clients' registered public keys (RFC 7523 §2.2)
    trusted_issuers: TrustedIssuerRegistry  # whose JWTs /token accepts as grants (RFC 7523), with their keys

    def url(self, path: str) -> str:
        """An absolute URL of ours: always built from the issuer, never from request headers."""
        return f"{self.settings.auth_issuer}{path}"
