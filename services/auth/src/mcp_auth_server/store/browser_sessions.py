"""The auth service's own browser sessions: server-side rows, revocable, cookie holds a random id."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import BrowserSession


def start_session(session: AsyncSession, user_id: str, ttl: int) -> str:
    session_id = new_secret()
    moment = now()
    session.add(
        BrowserSession(
            id_hash=hash_secret(session_id),
            user_id=user_id,
            created_at=moment,
            expires_at=moment + ttl,
            last_seen_at=moment,
        )
    )
    return session_id


async def live_session(session: AsyncSession, session_id: str | None) -> BrowserSession | None:
    if not session_id:
        return None
    found = await session.get(BrowserSession, hash_secret(session_id))
    if found is None or found.revoked_at is not None or found.expires_at <= now():
        return None
    return found


async def end_browser_session(session: AsyncSession, session_id: str) -> None:
    """Sign out: the session ends server-side, whatever happens to the cookie."""
    await session.execute(
        update(BrowserSession)
        .where(BrowserSession.id_hash == hash_secret(session_id), BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )
