"""Authorization codes: ≥256 random bits, stored hashed, single-use, short-lived (RFC 6749 §4.1.2,
OAuth 2.1 §4.1.3). A replayed code revokes everything issued from it (RFC 6749 §10.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import AuthorizationCode, Consent, UpstreamIdentity, User
from mcp_auth_server.db.statements import LOCK, Sql, Statement, columns, json_columns_of
from mcp_auth_server.store.standings import (
    STANDING_COLUMNS,
    ConsentStanding,
    UserStanding,
    consent_standing,
    user_standing,
)
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
    dpop_jkt: str | None = None,
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
            dpop_jkt=dpop_jkt,
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
    dpop_jkt: str | None  # RFC 9449 §10: redeemable only with a proof by this key
    profile: dict[str, Any]  # the user's public profile (the code's user exists: ON DELETE CASCADE)
    user: UserStanding  # what the credential policy decides on, read in the same statement
    consent: ConsentStanding | None


@dataclass(frozen=True)
class Redemption:
    code: RedeemedCode | None  # the code, if this call redeemed it
    replayed: AuthorizationCode | None  # the code, if it had already been redeemed


# Marks the code redeemed atomically: of concurrent redemptions exactly one matches the row. The
# user's public profile (PROFILE_COLUMNS) and the credential policy's facts (the user's standing at
# the configured upstream, their consent for this client and resource) come back with it, by
# subqueries: SQLite's RETURNING cannot name a joined table.
#
# The user's row is read under a share lock held until the redemption commits: `mcp-auth users
# disable` (an UPDATE of that row) then either committed before, and the policy sees the user
# disabled, or waits for the redemption, and its revocation then sees the grant the redemption made.
# Without it, a redemption still asking the upstream when the disable commits would add a grant the
# disable never saw.
_USER = "FROM users WHERE users.id = authorization_codes.user_id"
_IDENTITY = (
    "FROM upstream_identities ui WHERE ui.user_id = authorization_codes.user_id AND ui.provider = :provider"
)
_CONSENT = (
    "FROM consents c WHERE c.user_id = authorization_codes.user_id"
    " AND c.client_id = authorization_codes.client_id AND c.resource = authorization_codes.resource"
)
_REDEEMED = (
    "client_id",
    "user_id",
    "redirect_uri",
    "code_challenge",
    "resource",
    "scopes",
    "auth_time",
    "expires_at",
    "dpop_jkt",
)
_RETURNED_ALONG = ", ".join(
    [f"(SELECT {columns(User, name)} {_USER}) AS {name}" for name in PROFILE_COLUMNS]
    + [f"(SELECT {columns(User, 'disabled_at')} {_USER}{LOCK}) AS disabled_at"]
    + [
        f"(SELECT {columns(UpstreamIdentity, column, alias='ui')} {_IDENTITY}) AS {name}"
        for name, column in (("identity_id", "id"), ("checked_at", "checked_at"))
    ]
    + [
        f"(SELECT {columns(Consent, name, alias='c')} {_CONSENT}) AS consent_{name}"
        for name in ("scopes", "expires_at")
    ]
)
REDEEM = Statement(
    "UPDATE authorization_codes SET redeemed_at = :moment, grant_id = :grant_id,"
    " access_token_jti = :access_token_jti, access_token_expires_at = :access_token_expires_at"
    " WHERE code_hash = :code_hash AND redeemed_at IS NULL"
    f" RETURNING {columns(AuthorizationCode, *_REDEEMED)}, {_RETURNED_ALONG}",
    json_columns=json_columns_of(AuthorizationCode, *_REDEEMED) | {"consent_scopes"},
    lock="FOR SHARE",
)


async def redeem(session: AsyncSession, code: str, produced: Produced, provider: str) -> Redemption:
    """Redeem the code in one statement; if the request then fails a check, its transaction rolls
    back and the code stays unredeemed. `provider`: the configured upstream, whose identity counts."""
    code_hash = hash_secret(code)
    sql = await Sql.of(session)
    row = await sql.row(
        REDEEM,
        moment=now(),
        grant_id=produced.grant_id,
        access_token_jti=produced.access_token_jti,
        access_token_expires_at=produced.access_token_expires_at,
        code_hash=code_hash,
        provider=provider,
    )
    if row is not None:
        profile = {column: row.pop(column) for column in PROFILE_COLUMNS}
        user, consent = user_standing(row, row["user_id"]), consent_standing(row)
        for column in STANDING_COLUMNS:
            del row[column]
        return Redemption(
            code=RedeemedCode(**row, profile=profile, user=user, consent=consent), replayed=None
        )
    return Redemption(code=None, replayed=await session.get(AuthorizationCode, code_hash))
