"""Authorization codes: ≥256 random bits, stored hashed, single-use, short-lived (RFC 6749 §4.1.2,
OAuth 2.1 §4.1.3). A replayed code revokes everything issued from it (RFC 6749 §10.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import AuthorizationCode
from mcp_auth_server.db.statements import Sql, Statement
from mcp_auth_server.store.users import PROFILE_COLUMNS


def issue_code(
    session: AsyncSession,
    *,
    client_id: str,
    user_id: str,
    redirect_uri: str,
    code_challenge: str,
    resource: str,
    scopes: list[str],
    auth_time: int,
    ttl: int,
) -> str:
    code = new_secret()
    moment = now()
    session.add(
        AuthorizationCode(
            code_hash=hash_secret(code),
            client_id=client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            resource=resource,
            scopes=scopes,
            auth_time=auth_time,
            created_at=moment,
            expires_at=moment + ttl,
        )
    )
    return code


@dataclass(frozen=True)
class Produced:
    """What a redemption will produce, recorded with it so a later replay can revoke it (§10.5)."""

    grant_id: str
    access_token_jti: str
    access_token_expires_at: int


@dataclass(frozen=True)
class RedeemedCode:
    client_id: str
    user_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scopes: list[str]
    auth_time: int
    expires_at: int
    profile: dict[str, Any]  # the user's public profile (the code's user exists: ON DELETE CASCADE)


@dataclass(frozen=True)
class Redemption:
    code: RedeemedCode | None  # the code, if this call redeemed it
    replayed: AuthorizationCode | None  # the code, if it had already been redeemed


# Marks the code redeemed atomically: of concurrent redemptions exactly one matches the row. The
# user's public profile (PROFILE_COLUMNS) comes back with it, by subqueries: SQLite's RETURNING
# cannot name a joined table.
REDEEM = Statement(
    "UPDATE authorization_codes SET redeemed_at = :moment, grant_id = :grant_id,"
    " access_token_jti = :access_token_jti, access_token_expires_at = :access_token_expires_at"
    " WHERE code_hash = :code_hash AND redeemed_at IS NULL"
    " RETURNING client_id, user_id, redirect_uri, code_challenge, resource, scopes, auth_time, expires_at,"
    " (SELECT login FROM users WHERE users.id = authorization_codes.user_id) AS login,"
    " (SELECT name FROM users WHERE users.id = authorization_codes.user_id) AS name,"
    " (SELECT email FROM users WHERE users.id = authorization_codes.user_id) AS email,"
    " (SELECT avatar_url FROM users WHERE users.id = authorization_codes.user_id) AS avatar_url",
    json_columns=frozenset({"scopes"}),
)


async def redeem(session: AsyncSession, code: str, produced: Produced) -> Redemption:
    """Redeem the code in one statement; if the request then fails a check, its transaction rolls
    back and the code stays unredeemed."""
    code_hash = hash_secret(code)
    sql = await Sql.of(session)
    row = await sql.row(
        REDEEM,
        moment=now(),
        grant_id=produced.grant_id,
        access_token_jti=produced.access_token_jti,
        access_token_expires_at=produced.access_token_expires_at,
        code_hash=code_hash,
    )
    if row is not None:
        profile = {column: row.pop(column) for column in PROFILE_COLUMNS}
        return Redemption(code=RedeemedCode(**row, profile=profile), replayed=None)
    return Redemption(code=None, replayed=await session.get(AuthorizationCode, code_hash))
