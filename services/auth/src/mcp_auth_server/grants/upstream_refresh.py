"""The user's upstream tokens, renewed before they are used when the access token is about to expire.

Used where an upstream token leaves or is relied on: token exchange (a tool must never receive a token
that dies mid-call) and the refresh grant's re-check of the user upstream. One renewal at a time per
identity: the row is locked and re-read, so a provider that rotates refresh tokens never sees the same
one twice from us.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import UpstreamIdentity
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.users import store_upstream_tokens, upstream_tokens
from mcp_auth_server.upstreams.base import UpstreamTokens

# Renew when the access token has less than this left: enough for a tool call to finish with it.
RENEW_MARGIN_SECONDS = 60


def _expiring(tokens: UpstreamTokens) -> bool:
    return tokens.expires_at is not None and tokens.expires_at - now() < RENEW_MARGIN_SECONDS


def renewal_due(tokens: UpstreamTokens | None) -> bool:
    """Whether `fresh_upstream_tokens` would renew these tokens (they expire soon and can be renewed)."""
    return tokens is not None and tokens.refresh_token is not None and _expiring(tokens)


async def fresh_upstream_tokens(
    runtime: Runtime, session: AsyncSession, linked: UpstreamIdentity
) -> UpstreamTokens | None:
    """The stored tokens, renewed and stored (encrypted) first if they expire within a minute.

    Raises UpstreamRejected when the provider refuses the refresh token and UpstreamUnavailable when
    it cannot be asked; an expiring token without a refresh token is returned as it is.
    """
    box = runtime.upstream_token_box
    tokens = upstream_tokens(linked, box)
    if not renewal_due(tokens):
        return tokens
    await session.refresh(linked, with_for_update=True)  # another request may have just renewed it
    tokens = upstream_tokens(linked, box)
    if tokens is None or not renewal_due(tokens):
        return tokens
    renewed = await runtime.upstream.refresh(tokens)
    store_upstream_tokens(linked, renewed, box)
    return renewed
