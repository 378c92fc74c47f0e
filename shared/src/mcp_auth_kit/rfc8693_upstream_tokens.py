"""Gets the signed-in user's upstream (e.g. GitHub) token from the auth service by RFC 8693 token exchange.

The MCP server never passes the user's access token through to GitHub (MCP security best practices:
no token passthrough). It authenticates as its own confidential client and trades the user's token
for the upstream one, cached per (user token, audience) until shortly before it expires. Tokens are
never logged and never appear in exception messages.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from mcp_auth_kit.client_credentials import ClientCredentials, PrivateKeyJWT
from mcp_auth_kit.expiring_lru import ExpiringLRU
from mcp_auth_kit.rfc8414_discovery import DiscoveryError, discover_endpoint

logger = logging.getLogger(__name__)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class UpstreamTokenError(Exception):
    """The auth service would not (or could not) give an upstream token; `error` is the OAuth error code."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class UpstreamTokenClient:
    """This MCP server's token-exchange client at the auth service."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
        private_key: PrivateKeyJWT | None = None,
        http_client: httpx.AsyncClient | None = None,
        token_endpoint: str | None = None,
        internal_url: str | None = None,
        expiry_margin: float = 60.0,
        cache_size: int = 10_000,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._token_endpoint = token_endpoint
        self._internal_url = internal_url  # where to reach the issuer, if not at its public URL
        # A secret (HTTP Basic) or a private key (private_key_jwt): see client_credentials.py.
        self._credentials = ClientCredentials(client_id, client_secret, private_key)
        self._expiry_margin = expiry_margin
        self._now = now
        self._cache: ExpiringLRU[tuple[bytes, str], str] = ExpiringLRU(cache_size)

    def __repr__(self) -> str:
        return f"UpstreamTokenClient(issuer={self.issuer!r})"

    async def token_for(self, audience: str, access_token: AccessToken | None = None) -> str:
        """The upstream token for `audience` (e.g. "github") on behalf of the user of `access_token`.

        `access_token` defaults to the current request's (`get_access_token()`), so inside a tool
        `await upstream.token_for("github")` is enough.
        """
        subject = access_token or get_access_token()
        if subject is None:
            raise UpstreamTokenError("invalid_request", "no authenticated user in this context")
        # Keyed by a digest so the cache does not keep a second copy of every user's bearer token.
        key = (hashlib.sha256(subject.token.encode()).digest(), audience)
        now = self._now()
        cached = self._cache.get(key, now)
        if cached is not None:
            return cached
        token, expires_in = await self._exchange(subject.token, audience)
        expires_at = now + expires_in if expires_in is not None else subject.expires_at
        if expires_at is not None:
            self._cache.put(key, token, expires_at - self._expiry_margin)
        return token

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _exchange(self, subject_token: str, audience: str) -> tuple[str, float | None]:
        """RFC 8693 §2.1 request; §2.2.1 response; §2.2.2 (RFC 6749 §5.2) errors."""
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
        }
        form, headers = self._credentials.authenticate(form, self.issuer)
        try:
            response = await self._client.post(
                await self._endpoint(), data=form, headers={**headers, "Accept": "application/json"}
            )
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamTokenError(
                "temporarily_unavailable", f"token exchange failed: {type(exc).__name__}"
            ) from None
        if not isinstance(payload, dict):
            raise UpstreamTokenError("server_error", "token exchange answered with non-object JSON")
        if response.status_code != 200:
            error = payload.get("error")
            description = payload.get("error_description")
            logger.warning("token exchange refused", extra={"error": error, "audience": audience})
            raise UpstreamTokenError(
                error if isinstance(error, str) else "server_error",
                description if isinstance(description, str) else None,
            )
        token = payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise UpstreamTokenError("server_error", "token exchange response has no access_token")
        expires_in = payload.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            return token, None
        return token, float(expires_in)

    async def _endpoint(self) -> str:
        if self._token_endpoint is None:
            try:
                self._token_endpoint = await discover_endpoint(
                    self._client, self.issuer, "token_endpoint", self._internal_url
                )
            except DiscoveryError as exc:
                raise UpstreamTokenError("temporarily_unavailable", str(exc)) from None
        return self._token_endpoint
