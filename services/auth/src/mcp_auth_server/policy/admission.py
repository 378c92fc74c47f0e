"""Is a user still admitted by the upstream? Asked again at most every AUTH_UPSTREAM_RECHECK_SECONDS.

The upstream's allow-lists (an org, a team, a domain) change without telling us. Every credential path
asks here before it issues or honours anything, so someone removed upstream loses access at the next
use of any credential — refresh, a silent /authorize, an exchange, introspection — not just at refresh.
A refused user is deprovisioned on the spot: their grants end, their browser sessions end and their
consents are forgotten, so MCP clients cannot quietly re-authorize them.

One answer per user and request: a page listing several grants asks the upstream once.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import UpstreamIdentity
from mcp_auth_server.grants.upstream_refresh import fresh_upstream_tokens, renewal_due
from mcp_auth_server.oauth.errors import temporarily_unavailable
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused, Refusal
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.revocation import deprovision
from mcp_auth_server.store.standings import UserStanding
from mcp_auth_server.store.users import mark_checked, read_identity, upstream_tokens
from mcp_auth_server.upstreams.base import AccessDenied, Identity, UpstreamRejected, UpstreamUnavailable


class UpstreamAdmission:
    def __init__(self, runtime: Runtime, session: AsyncSession) -> None:
        self._runtime = runtime
        self._session = session
        self._admitted: set[str] = set()

    async def still_admitted(self, user: UserStanding) -> None:
        if user.id in self._admitted:
            return
        if user.identity_id is None:
            # Signed in through an upstream that is no longer configured: nobody can vouch for them now.
            await self._refuse(user.id, f"no identity at the {self._runtime.upstream.name} upstream")
        fresh = user.checked_at is not None and now() - user.checked_at < self._recheck_seconds
        if not fresh:
            await self._ask_upstream(user)
        self._admitted.add(user.id)

    @property
    def _recheck_seconds(self) -> int:
        return self._runtime.settings.auth_upstream_recheck_seconds

    async def _ask_upstream(self, user: UserStanding) -> None:
        runtime, session = self._runtime, self._session
        assert user.identity_id is not None  # still_admitted refused a user without one
        # Read with a plain statement; only tokens about to be renewed need the identity as a row of the
        # session (locked, changed, flushed with the request's transaction).
        found = await read_identity(session, user.identity_id)
        if found is None:
            await self._refuse(user.id, "their upstream identity is gone")
        tokens = upstream_tokens(found, runtime.upstream_token_box)
        linked = await session.get(UpstreamIdentity, found.id) if renewal_due(tokens) else None
        try:
            if linked is not None:
                tokens = await fresh_upstream_tokens(runtime, session, linked)
            identity = Identity(provider=found.provider, subject=found.subject, tokens=tokens)
            await runtime.upstream.check_access(identity)
        except (AccessDenied, UpstreamRejected) as exc:
            await self._refuse(user.id, str(exc))
        except UpstreamUnavailable as exc:
            name = runtime.upstream.display_name
            raise temporarily_unavailable(
                f"{name} is unavailable to confirm the user's access: {exc}",
                # Tokens renewed before the failure are kept: a provider that rotates refresh tokens
                # has already retired the old one, and the next re-check would be refused with it.
                persist=linked is not None and linked.access_token_encrypted != found.access_token_encrypted,
            ) from None
        await mark_checked(session, found.id)

    async def _refuse(self, user_id: str, reason: str) -> NoReturn:
        await deprovision(self._session, user_id, "upstream_access_lost", reason=reason)
        raise CredentialRefused(Refusal.USER_NOT_ADMITTED, reason, persist=True)


def request_policy(runtime: Runtime, session: AsyncSession) -> CredentialPolicy:
    """The credential policy for one request: its upstream answers are remembered for that request only."""
    return CredentialPolicy(runtime.resources, UpstreamAdmission(runtime, session))
