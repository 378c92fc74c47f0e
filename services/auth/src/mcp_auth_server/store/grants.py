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
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Grant
from mcp_auth_server.db.statements import Sql, Statement
from mcp_auth_server.store import audit
from mcp_auth_server.store.users import PROFILE_COLUMNS

ADD_GRANT = Statement(
    "INSERT INTO grants (id, user_id, client_id, resource, scopes, auth_time, created_at, expires_at,"
    " last_used_at, generation) VALUES (:id, :user_id, :client_id, :resource, :scopes, :auth_time,"
    " :moment, :expires_at, :moment, :generation)"
)
ADD_REFRESH_TOKEN = Statement(
    "INSERT INTO refresh_tokens (token_hash, grant_id, generation, scopes, created_at, grace_used)"
    " VALUES (:token_hash, :grant_id, :generation, :scopes, :moment, false)"
)


async def add_grant(
    sql: Sql,
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
    """Insert a grant; its id."""
    grant_id = grant_id or str(uuid.uuid4())
    moment = now()
    await sql.execute(
        ADD_GRANT,
        id=grant_id,
        user_id=user_id,
        client_id=client_id,
        resource=resource,
        scopes=scopes,
        auth_time=auth_time,
        moment=moment,
        expires_at=moment + lifetime,
        generation=generation,
    )
    return grant_id


async def add_refresh_token(sql: Sql, grant_id: str, generation: int, scopes: list[str]) -> str:
    """Insert one generation of a family; the token in clear, which only its hash is stored of."""
    token = new_secret()
    await sql.execute(
        ADD_REFRESH_TOKEN,
        token_hash=hash_secret(token),
        grant_id=grant_id,
        generation=generation,
        scopes=scopes,
        moment=now(),
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
    user: FamilyUser | None  # None for a grant without a user (its user exists: ON DELETE CASCADE)


@dataclass(frozen=True)
class FamilyUser:
    """The grant's user as `rotate` read them: public profile, and the upstream's last say."""

    id: str
    profile: dict[str, Any]  # login, name, email, avatar_url (store.users.public_profile)
    identity_id: str | None  # their identity at the configured upstream, if any
    checked_at: int | None  # when that upstream last vouched for them


class RefreshRefused(Exception):
    """The refresh token cannot be used; `reuse` says whether the family was just revoked for reuse."""

    def __init__(self, reason: str, reuse: bool = False) -> None:
        super().__init__(reason)
        self.reuse = reuse


# Reads the token with its grant and locks both rows (FOR UPDATE on the join), so concurrent
# refreshes of one family are decided one at a time, each seeing the rows as the previous one left
# them. The family's newest generation is on the locked grant row for that reason. The user's
# public profile (PROFILE_COLUMNS) and their identity at the configured upstream (when it last
# vouched for them) come along, unlocked: one round trip for everything a refresh reads.
READ_FAMILY = Statement(
    "SELECT rt.generation, rt.rotated_at, rt.grace_used, rt.scopes, g.id, g.user_id, g.client_id,"
    " g.resource, g.auth_time, g.expires_at, g.revoked_at, g.generation AS newest,"
    " u.login, u.name, u.email, u.avatar_url, ui.id AS identity_id, ui.checked_at"
    " FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id"
    " LEFT JOIN users u ON u.id = g.user_id"
    " LEFT JOIN upstream_identities ui ON ui.user_id = u.id AND ui.provider = :provider"
    " WHERE rt.token_hash = :token_hash",
    json_columns=frozenset({"scopes"}),
    lock="FOR UPDATE OF rt, g",
)
# A rotation's writes, sent together (Sql.execute_together): the presented token settled (rotated, or
# its grace use spent), the next generation added, and the grant advanced. ROTATE_FAMILY rotates
# the presented token and supersedes siblings minted in a grace window at once.
ROTATE_FAMILY = Statement(
    "UPDATE refresh_tokens SET rotated_at = :moment WHERE grant_id = :grant_id AND rotated_at IS NULL"
)
USE_GRACE = Statement("UPDATE refresh_tokens SET grace_used = true WHERE token_hash = :presented_hash")
ADVANCE_GRANT = Statement(
    "UPDATE grants SET last_used_at = :moment, generation = :newest WHERE id = :grant_id"
)


async def rotate(
    session: AsyncSession, presented: str, client_id: str, grace_seconds: int, provider: str
) -> Rotation:
    token_hash = hash_secret(presented)
    sql = await Sql.of(session)
    row = await sql.row(READ_FAMILY, token_hash=token_hash, provider=provider)
    if row is None:
        raise RefreshRefused("unknown refresh token")
    moment = now()
    if row["revoked_at"] is not None or row["expires_at"] <= moment:
        raise RefreshRefused("the grant has ended")
    if row["client_id"] != client_id:
        raise RefreshRefused("the refresh token was issued to another client")
    grant_id, generation, newest = row["id"], row["generation"], row["newest"]
    if row["rotated_at"] is None:
        settle = ROTATE_FAMILY
    elif generation == newest - 1 and moment - row["rotated_at"] <= grace_seconds and not row["grace_used"]:
        settle = USE_GRACE
    else:
        await revoke_grant(session, grant_id, "refresh_token_reuse")
        audit.record(
            session,
            "refresh_token_reuse",
            user_id=row["user_id"],
            client_id=client_id,
            grant_id=grant_id,
            generation=generation,
            newest_generation=newest,
        )
        raise RefreshRefused("the refresh token was already used; the grant is revoked", reuse=True)
    scopes: list[str] = list(row["scopes"])
    fresh = new_secret()
    await sql.execute_together(
        settle,
        ADD_REFRESH_TOKEN,
        ADVANCE_GRANT,
        moment=moment,
        grant_id=grant_id,
        presented_hash=token_hash,
        token_hash=hash_secret(fresh),
        generation=generation + 1,
        scopes=scopes,
        newest=max(newest, generation + 1),
    )
    grant = FamilyGrant(grant_id, row["user_id"], row["client_id"], row["resource"], row["auth_time"])
    user = None
    if row["user_id"] is not None:
        profile = {column: row[column] for column in PROFILE_COLUMNS}
        user = FamilyUser(row["user_id"], profile, row["identity_id"], row["checked_at"])
    return Rotation(grant=grant, refresh_token=fresh, scopes=scopes, user=user)
