"""Grants and their refresh-token families (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): the storage side.

Every use of a refresh token rotates it; `Family.settlement` says how a presented token settles,
and grants/refresh_token.py decides the rest. Concurrent refreshes of one family serialise on the
grant row (SELECT ... FOR UPDATE). A grant remembers the DPoP key its tokens were last bound to
(`dpop_jkt`, RFC 9449): the key a public client's refresh tokens need a proof by.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Client, Grant, RefreshToken, User
from mcp_auth_server.db.statements import Sql, Statement, columns, insert_into, json_columns_of
from mcp_auth_server.store.standings import (
    STANDING_JOINS,
    STANDING_SELECT,
    ClientStanding,
    ConsentStanding,
    GrantStanding,
    UserStanding,
    consent_standing,
    user_standing,
)
from mcp_auth_server.store.users import PROFILE_COLUMNS

ADD_GRANT = Statement(
    insert_into(
        Grant,
        **{
            name: f":{name}"
            for name in ("id", "user_id", "client_id", "resource", "scopes", "auth_time", "dpop_jkt")
        },
        created_at=":moment",
        expires_at=":expires_at",
        last_used_at=":moment",
        generation=":generation",
    )
)
ADD_REFRESH_TOKEN = Statement(
    insert_into(
        RefreshToken,
        **{name: f":{name}" for name in ("token_hash", "grant_id", "generation", "scopes")},
        created_at=":moment",
        grace_used="false",
    )
)


class NewGrant(TypedDict):
    """What a grant is made of (`add_grant`, `add_grant_with_refresh_token`), but its lifetime."""

    grant_id: str | None
    user_id: str | None
    client_id: str
    resource: str
    scopes: list[str]
    auth_time: int | None
    dpop_jkt: str | None


def _grant_row(
    *,
    user_id: str | None,
    client_id: str,
    resource: str,
    scopes: list[str],
    auth_time: int | None,
    lifetime: int,
    grant_id: str | None,
    generation: int,
    dpop_jkt: str | None,
) -> dict[str, Any]:
    """ADD_GRANT's parameters."""
    moment = now()
    return dict(
        id=grant_id or str(uuid.uuid4()),
        user_id=user_id,
        client_id=client_id,
        resource=resource,
        scopes=scopes,
        auth_time=auth_time,
        moment=moment,
        expires_at=moment + lifetime,
        generation=generation,
        dpop_jkt=dpop_jkt,
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
    dpop_jkt: str | None = None,
) -> str:
    """Insert a grant; its id."""
    row = _grant_row(
        user_id=user_id,
        client_id=client_id,
        resource=resource,
        scopes=scopes,
        auth_time=auth_time,
        lifetime=lifetime,
        grant_id=grant_id,
        generation=generation,
        dpop_jkt=dpop_jkt,
    )
    await sql.execute(ADD_GRANT, **row)
    return str(row["id"])


async def add_grant_with_refresh_token(
    sql: Sql,
    *,
    user_id: str | None,
    client_id: str,
    resource: str,
    scopes: list[str],
    auth_time: int | None,
    lifetime: int,
    grant_id: str | None = None,
    dpop_jkt: str | None = None,
) -> tuple[str, str]:
    """Insert a grant with its family's first refresh token (generation 1) in one round trip (on
    Postgres one statement: the foreign key is checked at its end); the grant's id and the token in clear."""
    row = _grant_row(
        user_id=user_id,
        client_id=client_id,
        resource=resource,
        scopes=scopes,
        auth_time=auth_time,
        lifetime=lifetime,
        grant_id=grant_id,
        generation=1,
        dpop_jkt=dpop_jkt,
    )
    token = new_secret()
    await sql.execute_together(
        ADD_GRANT, ADD_REFRESH_TOKEN, **row, grant_id=row["id"], token_hash=hash_secret(token)
    )
    return str(row["id"]), token


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


def is_live(grant: Grant) -> bool:
    return grant.revoked_at is None and grant.expires_at > now()


@dataclass(frozen=True)
class Family:
    """A refresh token's family as `read_family` found it (and locked it), with the policy's facts."""

    token_hash: str
    generation: int  # the presented token's
    newest: int  # the family's newest generation
    rotated_at: int | None  # when the presented token was rotated, if it was
    grace_used: bool
    scopes: list[str]
    grant_id: str
    client_id: str
    resource: str
    auth_time: int | None
    dpop_jkt: str | None  # the DPoP key the family's tokens are bound to (RFC 9449)
    grant: GrantStanding
    user: UserStanding | None  # None for a grant without a user (its user exists: ON DELETE CASCADE)
    profile: dict[str, Any]  # the user's public profile (store.users.public_profile)
    consent: ConsentStanding | None

    def settlement(self, moment: int, grace_seconds: int) -> Statement | None:
        """How presenting this token settles it: rotate the family, or spend the previous token's one grace
        use (a lost response, two egress addresses refreshing at once); None when it is a reuse."""
        if self.rotated_at is None:
            return ROTATE_FAMILY
        in_grace = (
            self.generation == self.newest - 1
            and grace_seconds > 0
            and moment - self.rotated_at <= grace_seconds
        )
        return USE_GRACE if in_grace and not self.grace_used else None


# Reads the token with its grant and locks both rows (FOR UPDATE on the join), so concurrent
# refreshes of one family are decided one at a time, each seeing the rows as the previous one left
# them. The family's newest generation is on the locked grant row for that reason. The user's
# public profile (PROFILE_COLUMNS), their standing at the configured upstream and their consent for
# this client and resource come along, unlocked: one round trip for everything a refresh reads.
_FAMILY_READ = ", ".join(
    [
        columns(RefreshToken, "generation", "rotated_at", "grace_used", "scopes", alias="rt"),
        columns(
            Grant,
            "id",
            "user_id",
            "client_id",
            "resource",
            "auth_time",
            "expires_at",
            "revoked_at",
            "dpop_jkt",
            alias="g",
        ),
        columns(Grant, alias="g", newest="generation"),
        columns(User, *PROFILE_COLUMNS, alias="u"),
        STANDING_SELECT,
    ]
)
READ_FAMILY = Statement(
    f"SELECT {_FAMILY_READ} FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id{STANDING_JOINS}"
    " WHERE rt.token_hash = :token_hash",
    json_columns=frozenset({"scopes", "consent_scopes"}),
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
    "UPDATE grants SET last_used_at = :moment, generation = :newest, dpop_jkt = :dpop_jkt"
    " WHERE id = :grant_id"
)


async def read_family(session: AsyncSession, presented: str, provider: str) -> Family | None:
    """The presented refresh token's family, locked until the transaction ends; None if unknown.

    `provider`: the configured upstream, whose identity of the user counts for the policy."""
    token_hash = hash_secret(presented)
    row = await (await Sql.of(session)).row(READ_FAMILY, token_hash=token_hash, provider=provider)
    if row is None:
        return None
    user_id = row["user_id"]
    return Family(
        token_hash=token_hash,
        generation=row["generation"],
        newest=row["newest"],
        rotated_at=row["rotated_at"],
        grace_used=bool(row["grace_used"]),
        scopes=list(row["scopes"]),
        grant_id=row["id"],
        client_id=row["client_id"],
        resource=row["resource"],
        auth_time=row["auth_time"],
        dpop_jkt=row["dpop_jkt"],
        grant=GrantStanding(row["id"], row["revoked_at"] is not None, row["expires_at"]),
        user=None if user_id is None else user_standing(row, user_id),
        profile={column: row[column] for column in PROFILE_COLUMNS},
        consent=consent_standing(row),
    )


async def advance_family(
    session: AsyncSession, family: Family, settle: Statement, dpop_jkt: str | None = None
) -> str:
    """Settle the presented token and add the family's next generation; the new refresh token in clear.

    `dpop_jkt`: the key this refresh's proof was made with (None: none), to which the grant's tokens
    are bound from now on."""
    fresh = new_secret()
    await (await Sql.of(session)).execute_together(
        settle,
        ADD_REFRESH_TOKEN,
        ADVANCE_GRANT,
        moment=now(),
        grant_id=family.grant_id,
        presented_hash=family.token_hash,
        token_hash=hash_secret(fresh),
        generation=family.generation + 1,
        scopes=family.scopes,
        newest=max(family.newest, family.generation + 1),
        dpop_jkt=dpop_jkt,
    )
    return fresh


@dataclass(frozen=True)
class GrantInUse:
    """The grant an access token names, with everything the policy needs to decide on it."""

    user_id: str | None
    client: ClientStanding
    resource: str
    grant: GrantStanding
    user: UserStanding | None
    consent: ConsentStanding | None
    token_revoked: bool  # the access token's own jti was revoked (RFC 7009)


_CLIENT_STANDING = ("grant_types", "origin", "allowed_resources", "allowed_scopes")
_IN_USE_READ = ", ".join(
    [
        columns(Grant, "id", "user_id", "client_id", "resource", "expires_at", "revoked_at", alias="g"),
        columns(Client, *_CLIENT_STANDING, alias="cl"),
        STANDING_SELECT,
    ]
)
READ_GRANT_IN_USE = Statement(
    f"SELECT {_IN_USE_READ},"
    " EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = :jti) AS token_revoked"
    f" FROM grants g JOIN clients cl ON cl.client_id = g.client_id{STANDING_JOINS}"
    " WHERE g.id = :grant_id",
    json_columns=json_columns_of(Client, *_CLIENT_STANDING) | {"consent_scopes"},
)


async def grant_in_use(session: AsyncSession, grant_id: str, jti: str, provider: str) -> GrantInUse | None:
    """The grant an access token names (None if it is gone: pruned, or its client or user deleted)."""
    row = await (await Sql.of(session)).row(READ_GRANT_IN_USE, grant_id=grant_id, jti=jti, provider=provider)
    if row is None:
        return None
    user_id = row["user_id"]
    client = ClientStanding(
        row["client_id"],
        tuple(row["grant_types"]),
        row["origin"],
        tuple(row["allowed_resources"]),
        tuple(row["allowed_scopes"]),
    )
    return GrantInUse(
        user_id=user_id,
        client=client,
        resource=row["resource"],
        grant=GrantStanding(row["id"], row["revoked_at"] is not None, row["expires_at"]),
        user=None if user_id is None else user_standing(row, user_id),
        consent=consent_standing(row),
        token_revoked=bool(row["token_revoked"]),
    )
