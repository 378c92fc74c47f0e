"""Remembered consent: a user approved a client for a resource and a set of scopes."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Consent
from mcp_auth_server.store.standings import ConsentStanding

# How long an approval is remembered; never shorter than the grants made under it (refresh needs it).
CONSENT_TTL = 90 * 86_400


async def standing(
    session: AsyncSession, user_id: str, client_id: str, resource: str
) -> ConsentStanding | None:
    """The user's remembered consent for this client and resource, as the credential policy reads it."""
    consent = await _find(session, user_id, client_id, resource)
    return None if consent is None else ConsentStanding(frozenset(consent.scopes), consent.expires_at)


async def approved_by(session: AsyncSession, user_id: str, client_id: str) -> bool:
    """Whether this user has a remembered approval of this client (for any resource)."""
    approval = exists().where(Consent.user_id == user_id, Consent.client_id == client_id)
    return bool(await session.scalar(select(approval)))


async def remember(
    session: AsyncSession, user_id: str, client_id: str, resource: str, scopes: list[str], grant_lifetime: int
) -> None:
    moment = now()
    expires_at = moment + max(CONSENT_TTL, grant_lifetime)
    consent = await _find(session, user_id, client_id, resource)
    if consent is None:
        try:
            # In a savepoint: two tabs approving the same client at once both find no row; the
            # loser's insert hits the unique constraint and merges into the winner's row instead.
            async with session.begin_nested():
                session.add(
                    Consent(
                        user_id=user_id,
                        client_id=client_id,
                        resource=resource,
                        scopes=sorted(scopes),
                        created_at=moment,
                        expires_at=expires_at,
                    )
                )
            return
        except IntegrityError:
            consent = await _find(session, user_id, client_id, resource)
            assert consent is not None  # the row the concurrent insert committed
    consent.scopes = sorted(set(consent.scopes) | set(scopes))
    consent.expires_at = expires_at


async def _find(session: AsyncSession, user_id: str, client_id: str, resource: str) -> Consent | None:
    return await session.scalar(
        select(Consent).where(
            Consent.user_id == user_id, Consent.client_id == client_id, Consent.resource == resource
        )
    )
