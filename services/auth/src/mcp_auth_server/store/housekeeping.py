"""Pruning what has expired, so the tables hold live state and not years of history.

Every replica runs a round every AUTH_HOUSEKEEPING_SECONDS. Each deletion is a plain
`DELETE … WHERE <expired>` in bounded batches (one short transaction each, so no long locks on hot
tables): idempotent, so replicas running together cannot harm each other. On Postgres a
round also takes a try-lock (`pg_try_advisory_lock`), so usually only one replica does the work
and the others skip the round.

What is kept, and for how long past its own expiry:
- authorization requests and account sign-ins: nothing (their state is useless once expired);
- authorization codes, redeemed or not: CODE_RETENTION (1 day), so a code replayed after it
  expired still revokes what it produced (RFC 6749 §10.5) for that long; afterwards a replay
  is merely an unknown code;
- browser sessions: nothing once expired or signed out;
- consents: nothing once expired;
- grants that were revoked or ended, with their refresh-token families: GRANT_RETENTION (7 days),
  for investigating a reuse alert; a rotated token of a live grant is kept for reuse detection;
- revoked access-token ids: REVOKED_JTI_MARGIN (5 minutes) past the token's expiry, longer than
  any resource server's clock leeway;
- used single-use identifiers (store/replay_cache.py): nothing once expired;
- audit events: forever, unless AUTH_AUDIT_RETENTION_DAYS is set.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Delete, and_, delete, exists, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import InstrumentedAttribute

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import (
    AccountSignIn,
    AuditEvent,
    AuthorizationCode,
    AuthorizationRequest,
    BrowserSession,
    Consent,
    Grant,
    RefreshToken,
    RevokedAccessToken,
    UsedIdentifier,
)
from mcp_auth_server.settings import AuthSettings

log = logging.getLogger(__name__)

CODE_RETENTION = 86_400
GRANT_RETENTION = 7 * 86_400
REVOKED_JTI_MARGIN = 300
BATCH_SIZE = 500
MAX_BATCHES = 200  # per table and round: a huge backlog is worked off over several rounds
# "mcp-auth housekeeping" as an advisory-lock key shared by every replica (migrations use another).
ADVISORY_LOCK_ID = 0x6D63706B656570


@dataclass(frozen=True)
class Prunable:
    """One kind of row, by primary key and the condition that makes it garbage at time `moment`."""

    name: str
    key: InstrumentedAttribute[Any]
    expired: ColumnElement[bool]


def prunables(moment: int, audit_retention_days: int | None) -> list[Prunable]:
    ended_grant = or_(
        Grant.revoked_at < moment - GRANT_RETENTION,
        Grant.expires_at < moment - GRANT_RETENTION,
    )
    kinds = [
        Prunable(
            "authorization_requests", AuthorizationRequest.id_hash, AuthorizationRequest.expires_at < moment
        ),
        Prunable("account_sign_ins", AccountSignIn.state_hash, AccountSignIn.expires_at < moment),
        Prunable(
            "authorization_codes",
            AuthorizationCode.code_hash,
            AuthorizationCode.expires_at < moment - CODE_RETENTION,
        ),
        Prunable(
            "browser_sessions",
            BrowserSession.id_hash,
            or_(BrowserSession.expires_at < moment, BrowserSession.revoked_at.is_not(None)),
        ),
        Prunable("consents", Consent.id, Consent.expires_at < moment),
        # A family goes before its grant, so no refresh token is left pointing at nothing.
        Prunable(
            "refresh_tokens",
            RefreshToken.token_hash,
            RefreshToken.grant_id.in_(select(Grant.id).where(ended_grant)),
        ),
        Prunable("grants", Grant.id, and_(ended_grant, ~exists().where(RefreshToken.grant_id == Grant.id))),
        Prunable(
            "revoked_access_tokens",
            RevokedAccessToken.jti,
            RevokedAccessToken.expires_at < moment - REVOKED_JTI_MARGIN,
        ),
        Prunable("used_identifiers", UsedIdentifier.key, UsedIdentifier.expires_at < moment),
    ]
    if audit_retention_days is not None:
        kinds.append(
            Prunable("audit_events", AuditEvent.id, AuditEvent.at < moment - audit_retention_days * 86_400)
        )
    return kinds


async def prune(
    engine: AsyncEngine, moment: int, audit_retention_days: int | None = None, batch_size: int = BATCH_SIZE
) -> dict[str, int]:
    """One round: the number of rows deleted per table (empty if another replica holds the round)."""
    async with engine.connect() as connection:
        if not await _try_lock(connection):
            return {}
        try:
            deleted = {
                kind.name: await _prune_kind(connection, kind, batch_size)
                for kind in prunables(moment, audit_retention_days)
            }
        finally:
            await _unlock(connection)
    deleted = {name: count for name, count in deleted.items() if count}
    if deleted:
        log.info("housekeeping pruned expired rows", extra={"deleted": deleted})
    return deleted


async def _prune_kind(connection: AsyncConnection, kind: Prunable, batch_size: int) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        # DELETE … WHERE key IN (SELECT key … LIMIT n): a bounded batch on Postgres and SQLite alike.
        batch = select(kind.key).where(kind.expired).limit(batch_size).scalar_subquery()
        statement: Delete = delete(kind.key.class_).where(kind.key.in_(batch))
        async with connection.begin():
            count = (await connection.execute(statement)).rowcount
        total += count
        if count < batch_size:
            break
    return total


async def _try_lock(connection: AsyncConnection) -> bool:
    if connection.dialect.name != "postgresql":
        return True
    async with connection.begin():
        locked = await connection.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
    return bool(locked)


async def _unlock(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        async with connection.begin():
            await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})


async def prune_periodically(engine: AsyncEngine, settings: AuthSettings) -> None:
    """The replica's housekeeping task (AUTH_HOUSEKEEPING_SECONDS); a failed round is retried next time."""
    while True:
        await asyncio.sleep(settings.auth_housekeeping_seconds)
        try:
            await prune(engine, now(), settings.auth_audit_retention_days)
        except Exception:
            log.exception("housekeeping round failed")
