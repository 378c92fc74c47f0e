"""The user an enterprise IdP's ID-JAG speaks for: pinned by an admin, already linked, linked by email,
or created (draft-ietf-oauth-identity-assertion-authz-grant: the resource authorization server "MUST be
configured to ... resolve identities asserted by that issuer to the appropriate local account").

The IdP's identity of a user is kept like an upstream identity: a row of `upstream_identities` whose
provider is the IdP (`idp:` and a digest of its issuer URL, which is longer than the column) and whose
subject is the value of the issuer's `user_claim`. Once linked, a user stays linked: a later change of
their email at the IdP does not move them to someone else.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import UpstreamIdentity, User
from mcp_auth_server.db.statements import Sql, Statement, columns
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig
from mcp_auth_server.store.standings import UserStanding
from mcp_auth_server.store.users import PROFILE_COLUMNS, public_profile, user_standing_of
from mcp_auth_server.upstreams.oidc_admission import verified_email


class UnmappedUser(Exception):
    """The assertion names nobody we may let in; the message says why (for the token endpoint)."""


@dataclass(frozen=True)
class EnterpriseUser:
    standing: UserStanding  # as the credential policy reads them (their identity at our own upstream)
    profile: dict[str, str]  # claims tools may read (store/users.py public_profile)
    how: str  # pinned | known | linked | created

    @property
    def user_id(self) -> str:
        return self.standing.id


def provider_of(issuer: str) -> str:
    """The `upstream_identities.provider` value for an IdP (40 characters at most)."""
    return "idp:" + hashlib.sha256(issuer.encode()).hexdigest()[:32]


async def enterprise_user(
    session: AsyncSession, idp: TrustedIssuerConfig, claims: dict[str, Any], upstream: str
) -> EnterpriseUser:
    """The user `claims` (a verified ID-JAG's) speak for; `upstream`: our configured upstream's name."""
    value = claims.get(idp.user_claim)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise UnmappedUser(f"the assertion has no usable {idp.user_claim} claim to identify the user")
    if idp.user_claim == "email" and _verified_email(claims) is None:
        # OpenID Connect Core §5.7: an address identifies a person only once the IdP has verified it;
        # otherwise whoever typed it would be the user pinned or linked to it.
        raise UnmappedUser("the IdP has not verified the email that identifies the user (email_verified)")
    provider = provider_of(idp.issuer)
    pinned = idp.pinned_users.get(value)
    if pinned is not None:
        user = await session.get(User, pinned)
        if user is None:
            raise UnmappedUser("the user this identity is pinned to does not exist")
        return await _linked(session, user, provider, value, upstream, "pinned")
    known = await _known(session, provider, value, upstream)
    if known is not None:
        return known
    email = _verified_email(claims)
    if idp.link_by_email and email is not None:
        same = (await session.scalars(select(User).where(func.lower(User.email) == email).limit(2))).all()
        if len(same) > 1:
            raise UnmappedUser("several users have this email; an admin pins the mapping")
        if same:
            return await _linked(session, same[0], provider, value, upstream, "linked")
    if not idp.create_users:
        raise UnmappedUser("this identity is not linked to a user here")
    moment = now()
    user = User(
        id=str(uuid.uuid4()),
        login=_text(claims.get("preferred_username")) or email or value,
        name=_text(claims.get("name")),
        email=email,
        created_at=moment,
        last_login_at=moment,
    )
    session.add(user)
    await session.flush()
    return await _linked(session, user, provider, value, upstream, "created")


# The user linked to an identity at an IdP, with their identity at our upstream: the hot path's one
# read, a plain statement (db/statements.py) rather than the ORM's Core execution, and (like the client's
# read) before the request begins a transaction if it has not: one statement sees what is committed the
# same way in or out of one (READ COMMITTED), and it locks nothing.
KNOWN_USER = Statement(
    f"SELECT {columns(User, 'id', 'disabled_at', *PROFILE_COLUMNS, alias='u')},"
    f" {columns(UpstreamIdentity, 'checked_at', alias='at_upstream', identity_id='id')}"
    " FROM upstream_identities at_idp JOIN users u ON u.id = at_idp.user_id"
    " LEFT JOIN upstream_identities at_upstream"
    " ON at_upstream.user_id = u.id AND at_upstream.provider = :upstream"
    " WHERE at_idp.provider = :provider AND at_idp.subject = :subject",
    outside_transaction=True,
)


async def _known(session: AsyncSession, provider: str, subject: str, upstream: str) -> EnterpriseUser | None:
    """The hot path, one read: the user linked to this identity at the IdP, or None."""
    sql = await Sql.of(session)
    row = await sql.row(KNOWN_USER, provider=provider, subject=subject, upstream=upstream)
    if row is None:
        return None
    standing = UserStanding(row["id"], row["disabled_at"] is not None, row["identity_id"], row["checked_at"])
    return EnterpriseUser(standing, public_profile(row), "known")


async def _linked(
    session: AsyncSession, user: User, provider: str, subject: str, upstream: str, how: str
) -> EnterpriseUser:
    existing = await session.scalar(
        select(UpstreamIdentity).where(
            UpstreamIdentity.provider == provider, UpstreamIdentity.subject == subject
        )
    )
    if existing is not None and existing.user_id != user.id:
        existing.user_id = user.id  # an admin's pin moves the identity
    linked = existing or UpstreamIdentity(
        id=str(uuid.uuid4()), user_id=user.id, provider=provider, subject=subject, updated_at=now()
    )
    linked.checked_at = now()
    if existing is None:
        try:
            async with session.begin_nested():  # a concurrent first request may have linked it already
                session.add(linked)
        except IntegrityError:
            raise UnmappedUser("this identity was linked concurrently; try again") from None
    user.last_login_at = now()
    profile = public_profile(
        {"login": user.login, "name": user.name, "email": user.email, "avatar_url": user.avatar_url}
    )
    return EnterpriseUser(await user_standing_of(session, user, upstream), profile, how)


def _verified_email(claims: dict[str, Any]) -> str | None:
    """OpenID Connect Core §5.1: only an address the IdP says it verified (`email_verified: true`) is
    linked; absent, `false` or anything else is the user's own claim, and would hand them the account of
    whoever signed in here with that address. The same rule as for our upstream's sign-ins."""
    email = verified_email(claims)
    if email is None or "@" not in email or len(email) > 320:
        return None
    return email


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None
