"""Users and their upstream identities; upstream tokens are stored encrypted."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.secret_box import DecryptionError, SecretBox
from mcp_auth_server.db.models import UpstreamIdentity, User
from mcp_auth_server.db.statements import Sql, Statement, columns
from mcp_auth_server.store.standings import UserStanding
from mcp_auth_server.upstreams.base import Identity, UpstreamTokens

log = logging.getLogger(__name__)


async def upsert_user(session: AsyncSession, identity: Identity, box: SecretBox) -> User:
    """Find the user by the provider's stable subject (never by login) and refresh what we know."""
    moment = now()
    linked = await session.scalar(
        select(UpstreamIdentity)
        .where(UpstreamIdentity.provider == identity.provider, UpstreamIdentity.subject == identity.subject)
        .with_for_update()
    )
    if linked is None:
        user = User(id=str(uuid.uuid4()), created_at=moment)
        session.add(user)
        await session.flush()  # rows referring to the user (sessions, codes) are inserted after it
        linked = UpstreamIdentity(
            id=str(uuid.uuid4()),
            user_id=user.id,
            provider=identity.provider,
            subject=identity.subject,
            updated_at=moment,
        )
        session.add(linked)
    else:
        found = await session.get(User, linked.user_id)
        assert found is not None  # the foreign key guarantees it
        user = found
    user.login, user.name, user.email, user.avatar_url = (
        identity.login,
        identity.name,
        identity.email,
        identity.avatar_url,
    )
    user.last_login_at = moment
    store_upstream_tokens(linked, identity.tokens, box)
    linked.checked_at = moment
    return user


def store_upstream_tokens(linked: UpstreamIdentity, tokens: UpstreamTokens | None, box: SecretBox) -> None:
    linked.updated_at = now()
    if tokens is None:
        return
    # Bound to the identity row: a ciphertext copied into another row does not decrypt.
    linked.access_token_encrypted = box.encrypt(tokens.access_token.encode(), bound_to=linked.id)
    linked.refresh_token_encrypted = (
        box.encrypt(tokens.refresh_token.encode(), bound_to=linked.id) if tokens.refresh_token else None
    )
    linked.access_token_expires_at = tokens.expires_at
    linked.scopes = tokens.scopes


def upstream_tokens(linked: UpstreamIdentity, box: SecretBox) -> UpstreamTokens | None:
    """The identity's upstream tokens, or None if none are stored or they do not decrypt.

    A ciphertext that does not authenticate was written under another secret or copied from
    another row (tampering): it counts as no token, so a refresh ends the grant instead of
    failing with a 500, and nobody is handed someone else's upstream token.
    """
    if linked.access_token_encrypted is None:
        return None
    refresh = linked.refresh_token_encrypted
    try:
        return UpstreamTokens(
            access_token=box.decrypt(linked.access_token_encrypted, bound_to=linked.id).decode(),
            refresh_token=box.decrypt(refresh, bound_to=linked.id).decode() if refresh else None,
            expires_at=linked.access_token_expires_at,
            scopes=linked.scopes,
        )
    except DecryptionError:
        log.warning("stored upstream tokens of identity %s do not decrypt", linked.id)
        return None


READ_IDENTITY = Statement(f"SELECT {columns(UpstreamIdentity)} FROM upstream_identities WHERE id = :id")
MARK_CHECKED = Statement("UPDATE upstream_identities SET checked_at = :moment WHERE id = :id")


async def read_identity(session: AsyncSession, identity_id: str) -> UpstreamIdentity | None:
    """The identity, read for the request at hand (a detached copy, not a row of the session): what
    the credential policy's upstream re-check reads when it need not renew the upstream tokens. Two plain
    statements (this and `mark_checked`) instead of the ORM's read and flush: about 0.8 ms of CPU less
    per re-check (docs/benchmarks.md)."""
    row = await (await Sql.of(session)).row(READ_IDENTITY, id=identity_id)
    return None if row is None else UpstreamIdentity(**row)


async def mark_checked(session: AsyncSession, identity_id: str) -> None:
    """The upstream said just now that the user may still use the service."""
    await (await Sql.of(session)).execute(MARK_CHECKED, moment=now(), id=identity_id)


async def identity_of(session: AsyncSession, user_id: str, provider: str) -> UpstreamIdentity | None:
    return await session.scalar(
        select(UpstreamIdentity).where(
            UpstreamIdentity.user_id == user_id, UpstreamIdentity.provider == provider
        )
    )


def standing_of(user: User, linked: UpstreamIdentity | None) -> UserStanding:
    """The user as the credential policy reads them: disabled or not, and their identity upstream."""
    return UserStanding(
        user.id,
        user.disabled_at is not None,
        None if linked is None else linked.id,
        None if linked is None else linked.checked_at,
    )


async def user_standing_of(session: AsyncSession, user: User, provider: str) -> UserStanding:
    return standing_of(user, await identity_of(session, user.id, provider))


def upstream_token_dead(linked: UpstreamIdentity) -> bool:
    """The stored upstream token has expired and there is no refresh token to renew it."""
    expires_at = linked.access_token_expires_at
    return linked.refresh_token_encrypted is None and expires_at is not None and expires_at <= now()


# The user columns the access token's profile claims come from (public_profile).
PROFILE_COLUMNS = ("login", "name", "email", "avatar_url")


def public_profile(user: Mapping[str, Any]) -> dict[str, str]:
    """Claims tools may read about the user (OIDC standard claim names)."""
    claims = {
        "preferred_username": user["login"],
        "name": user["name"],
        "email": user["email"],
        "picture": user["avatar_url"],
    }
    return {key: value for key, value in claims.items() if value}
