"""Ending credentials, in one place: every path that revokes calls these.

A grant revoked here takes its whole refresh-token family with it, and its access tokens stop
being good wherever they are checked against us (introspection, token exchange: they name their
grant). `deprovision` is the user-wide form: every grant, every browser session, every remembered
consent, so no client can quietly get a fresh credential for them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import BrowserSession, Consent, Grant, RevokedAccessToken
from mcp_auth_server.store import audit


async def revoke_grants(
    session: AsyncSession,
    reason: str,
    *,
    grant_id: str | None = None,
    user_id: str | None = None,
    client_id: str | None = None,
    resource: str | None = None,
) -> list[str]:
    """End every live grant matching all the criteria given (at least one); the ids of those ended."""
    criteria: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (Grant.id, grant_id),
            (Grant.user_id, user_id),
            (Grant.client_id, client_id),
            (Grant.resource, resource),
        )
        if value is not None
    ]
    if not criteria:
        raise ValueError("revoke_grants needs at least one criterion")
    ended = await session.scalars(
        update(Grant)
        .where(*criteria, Grant.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
        .returning(Grant.id)
    )
    return list(ended.all())


async def forget_consent(
    session: AsyncSession, user_id: str, client_id: str | None = None, resource: str | None = None
) -> None:
    """Forget remembered consent (all of the user's, or one client's, or one client's for one resource)."""
    statement = delete(Consent).where(Consent.user_id == user_id)
    if client_id is not None:
        statement = statement.where(Consent.client_id == client_id)
    if resource is not None:
        statement = statement.where(Consent.resource == resource)
    await session.execute(statement)


async def end_browser_sessions(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(BrowserSession)
        .where(BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )


async def deprovision(
    session: AsyncSession, user_id: str, event: audit.AuditEventName, **details: Any
) -> list[str]:
    """End all of a user's grants, browser sessions and remembered consent at once; audited as `event`."""
    ended = await revoke_grants(session, event, user_id=user_id)
    await end_browser_sessions(session, user_id)
    await forget_consent(session, user_id)
    audit.record(session, event, user_id=user_id, grants_revoked=len(ended), **details)
    return ended


async def revoke_access_token(session: AsyncSession, jti: str, expires_at: int) -> None:
    """Remember a revoked access token's `jti` until it would have expired (RFC 7009 §2)."""
    await session.merge(RevokedAccessToken(jti=jti, expires_at=expires_at))


async def is_access_token_revoked(session: AsyncSession, jti: str) -> bool:
    return (
        await session.scalar(select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == jti)) is not None
    )
