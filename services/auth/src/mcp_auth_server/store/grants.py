"""Grants and their refresh-token families (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).

Every use of a refresh token rotates it. Presenting a rotated token again means it leaked or
the family is confused: the whole family and its grant are revoked — except the immediately
previous token within a short grace window, which yields fresh tokens once, so a client that
lost a response (or refreshes from two egress addresses at once) is not logged out.
Concurrent refreshes of one family serialise on the grant row (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Grant, RefreshToken
from mcp_auth_server.store import audit


async def add_grant(
    session: AsyncSession,
    *,
    user_id: str | None,
    client_id: str,
    resource: str,
    scopes: list[str],
    auth_time: int | None,
    lifetime: int,
    grant_id: str | None = None,
    generation: int = 0,
) -> str:
    """Insert a grant (one statement, no ORM object); its id."""
    grant_id = grant_id or str(uuid.uuid4())
    moment = now()
    await session.execute(
        insert(Grant).values(
            id=grant_id,
            user_id=user_id,
            client_id=client_id,
            resource=resource,
            scopes=scopes,
            auth_time=auth_time,
            created_at=moment,
            expires_at=moment + lifetime,
            last_used_at=moment,
            generation=generation,
        )
    )
    return grant_id


async def add_refresh_token(session: AsyncSession, grant_id: str, generation: int, scopes: list[str]) -> str:
    """Insert one generation of a family; the token in clear, which only its hash is stored of."""
    token = new_secret()
    await session.execute(
        insert(RefreshToken).values(
            token_hash=hash_secret(token),
            grant_id=grant_id,
            generation=generation,
            scopes=scopes,
            created_at=now(),
            grace_used=False,
        )
    )
    return token


async def revoke_grant(session: AsyncSession, grant_id: str, reason: str) -> None:
    await session.execute(
        update(Grant)
        .where(Grant.id == grant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=now(), revoked_reason=reason)
    )


def is_live(grant: Grant) -> bool:
    return grant.revoked_at is None and grant.expires_at > now()


@dataclass(frozen=True)
class FamilyGrant:
    """The grant a refresh token belongs to, as read (and locked) by `rotate`."""

    id: str
    user_id: str | None
    client_id: str
    resource: str
    auth_time: int | None


@dataclass(frozen=True)
class Rotation:
    grant: FamilyGrant
    refresh_token: str
    scopes: list[str]


class RefreshRefused(Exception):
    """The refresh token cannot be used; `reuse` says whether the family was just revoked for reuse."""

    def __init__(self, reason: str, reuse: bool = False) -> None:
        super().__init__(reason)
        self.reuse = reuse


async def rotate(session: AsyncSession, presented: str, client_id: str, grace_seconds: int) -> Rotation:
    token_hash = hash_secret(presented)
    # One statement reads the token with its grant and locks both rows (FOR UPDATE on the join), so
    # concurrent refreshes of one family are decided one at a time, each seeing the rows as the
    # previous one left them. The family's newest generation is on the locked grant row for that reason.
    row = (
        await session.execute(
            select(
                RefreshToken.generation,
                RefreshToken.rotated_at,
                RefreshToken.grace_used,
                RefreshToken.scopes,
                Grant.id,
                Grant.user_id,
                Grant.client_id,
                Grant.resource,
                Grant.auth_time,
                Grant.expires_at,
                Grant.revoked_at,
                Grant.generation.label("newest"),
            )
            .join(Grant, Grant.id == RefreshToken.grant_id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise RefreshRefused("unknown refresh token")
    moment = now()
    if row.revoked_at is not None or row.expires_at <= moment:
        raise RefreshRefused("the grant has ended")
    if row.client_id != client_id:
        raise RefreshRefused("the refresh token was issued to another client")
    if row.rotated_at is None:
        # Rotates this token, and supersedes siblings minted in a grace window, in one statement.
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.grant_id == row.id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=moment)
        )
    elif row.generation == row.newest - 1 and moment - row.rotated_at <= grace_seconds and not row.grace_used:
        await session.execute(
            update(RefreshToken).where(RefreshToken.token_hash == token_hash).values(grace_used=True)
        )
    else:
        await revoke_grant(session, row.id, "refresh_token_reuse")
        audit.record(
            session,
            "refresh_token_reuse",
            user_id=row.user_id,
            client_id=client_id,
            grant_id=row.id,
            generation=row.generation,
            newest_generation=row.newest,
        )
        raise RefreshRefused("the refresh token was already used; the grant is revoked", reuse=True)
    generation, scopes = row.generation + 1, list(row.scopes)
    fresh = new_secret()
    await session.execute(
        insert(RefreshToken).values(
            token_hash=hash_secret(fresh),
            grant_id=row.id,
            generation=generation,
            scopes=scopes,
            created_at=moment,
            grace_used=False,
        )
    )
    await session.execute(
        update(Grant)
        .where(Grant.id == row.id)
        .values(last_used_at=moment, generation=max(row.newest, generation))
    )
    grant = FamilyGrant(row.id, row.user_id, row.client_id, row.resource, row.auth_time)
    return Rotation(grant=grant, refresh_token=fresh, scopes=scopes)
