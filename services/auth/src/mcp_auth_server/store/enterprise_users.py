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
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig


class UnmappedUser(Exception):
    """The assertion names nobody we may let in; the message says why (for the token endpoint)."""


@dataclass(frozen=True)
class EnterpriseUser:
    user: User
    how: str  # pinned | known | linked | created


def provider_of(issuer: str) -> str:
    """The `upstream_identities.provider` value for an IdP (40 characters at most)."""
    return "idp:" + hashlib.sha256(issuer.encode()).hexdigest()[:32]


async def enterprise_user(
    session: AsyncSession, idp: TrustedIssuerConfig, claims: dict[str, Any]
) -> EnterpriseUser:
    value = claims.get(idp.user_claim)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise UnmappedUser(f"the assertion has no usable {idp.user_claim} claim to identify the user")
    provider = provider_of(idp.issuer)
    pinned = idp.pinned_users.get(value)
    if pinned is not None:
        user = await session.get(User, pinned)
        if user is None:
            raise UnmappedUser("the user this identity is pinned to does not exist")
        return await _linked(session, user, provider, value, "pinned")
    linked = await session.scalar(
        select(UpstreamIdentity).where(
            UpstreamIdentity.provider == provider, UpstreamIdentity.subject == value
        )
    )
    if linked is not None:
        user = await session.get(User, linked.user_id)
        assert user is not None  # the foreign key guarantees it
        linked.checked_at = now()
        return EnterpriseUser(user, "known")
    email = _verified_email(claims)
    if idp.link_by_email and email is not None:
        same = (await session.scalars(select(User).where(func.lower(User.email) == email).limit(2))).all()
        if len(same) > 1:
            raise UnmappedUser("several users have this email; an admin pins the mapping")
        if same:
            return await _linked(session, same[0], provider, value, "linked")
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
    return await _linked(session, user, provider, value, "created")


async def _linked(session: AsyncSession, user: User, provider: str, subject: str, how: str) -> EnterpriseUser:
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
    return EnterpriseUser(user, how)


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None
    if claims.get("email_verified") is False:  # the IdP says so itself: never link on it
        return None
    return email.lower()


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None
