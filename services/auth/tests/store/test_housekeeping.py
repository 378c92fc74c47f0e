"""Housekeeping: expired rows go, live ones and those kept for replay detection stay; replicas don't clash.

Rows are moved back in time in the database (time travel) and pruned at the real `now`, so the
other tests' rows in the shared database are only touched if they really are expired.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.engine import create_engine
from mcp_auth_server.db.models import (
    AccountSignIn,
    AuditEvent,
    AuthorizationCode,
    AuthorizationRequest,
    Base,
    BrowserSession,
    Consent,
    Grant,
    RefreshToken,
    RevokedAccessToken,
)
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.housekeeping import (
    ADVISORY_LOCK_ID,
    CODE_RETENTION,
    GRANT_RETENTION,
    REVOKED_JTI_MARGIN,
    prune,
)

from ..conftest import RESOURCE_A, serve_in_process
from ..flow import (
    Database,
    all_rows,
    approve_and_sign_in,
    assert_oauth_error,
    browser_for,
    execute,
    new_request,
    redeem,
    register,
    tokens_for,
)

DAY = 86_400


@pytest.fixture
async def engine(migrated_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database)
    try:
        yield engine
    finally:
        await engine.dispose()


def _key() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex  # fits every 64-character hash key


async def _add(database: Database, *rows: Base) -> None:
    async with database() as session:
        session.add_all(rows)
        await session.commit()


async def _exists(database: Database, model: type[Base], key: Any) -> bool:
    async with database() as session:
        return await session.get(model, key) is not None


async def test_expired_rows_go_and_the_rest_stay(
    auth_client: httpx.AsyncClient, database: Database, engine: AsyncEngine
) -> None:
    tokens = await tokens_for(auth_client)
    client_id, t = tokens.client["client_id"], now()
    [user_id] = [g.user_id for g in await all_rows(database, Grant, Grant.client_id == client_id)]
    assert user_id is not None

    def request(expires_at: int) -> AuthorizationRequest:
        return AuthorizationRequest(
            id_hash=_key(), client_id=client_id, redirect_uri="x", code_challenge="x", resource=RESOURCE_A,
            browser_binding_hash="x", created_at=t - DAY, expires_at=expires_at,
        )  # fmt: skip

    def sign_in(expires_at: int) -> AccountSignIn:
        return AccountSignIn(
            state_hash=_key(), browser_binding_hash="x", upstream_secrets_encrypted=b"x",
            created_at=t - DAY, expires_at=expires_at,
        )  # fmt: skip

    def code(expires_at: int, redeemed: bool) -> AuthorizationCode:
        return AuthorizationCode(
            code_hash=_key(), client_id=client_id, user_id=user_id, redirect_uri="x", code_challenge="x",
            resource=RESOURCE_A, auth_time=t, created_at=t - 2 * DAY, expires_at=expires_at,
            redeemed_at=expires_at - 30 if redeemed else None,
        )  # fmt: skip

    def browser_session(expires_at: int, revoked_at: int | None = None) -> BrowserSession:
        return BrowserSession(
            id_hash=_key(), user_id=user_id, created_at=t - DAY, expires_at=expires_at,
            last_seen_at=t - DAY, revoked_at=revoked_at,
        )  # fmt: skip

    def grant(expires_at: int, revoked_at: int | None = None) -> Grant:
        return Grant(
            id=str(uuid.uuid4()), user_id=user_id, client_id=client_id, resource=RESOURCE_A, scopes=[],
            created_at=t - 40 * DAY, expires_at=expires_at, revoked_at=revoked_at,
        )  # fmt: skip

    gone: list[tuple[type[Base], Any]] = []
    kept: list[tuple[type[Base], Any]] = []
    rows: dict[str, Base] = {
        "request_expired": request(t - 1),
        "request_live": request(t + 600),
        "sign_in_expired": sign_in(t - 1),
        "sign_in_live": sign_in(t + 600),
        "code_long_expired": code(t - CODE_RETENTION - 1, redeemed=True),
        "code_unredeemed_long_expired": code(t - CODE_RETENTION - 1, redeemed=False),
        "code_recently_expired": code(t - CODE_RETENTION + 600, redeemed=True),
        "session_expired": browser_session(t - 1),
        "session_signed_out": browser_session(t + DAY, revoked_at=t - 5),
        "session_live": browser_session(t + DAY),
        "grant_revoked_long_ago": grant(t + DAY, revoked_at=t - GRANT_RETENTION - 1),
        "grant_ended_long_ago": grant(t - GRANT_RETENTION - 1),
        "grant_revoked_recently": grant(t + DAY, revoked_at=t - 60),
        "grant_live": grant(t + DAY),
        "jti_expired": RevokedAccessToken(jti=_key(), expires_at=t - REVOKED_JTI_MARGIN - 1),
        "jti_within_leeway": RevokedAccessToken(jti=_key(), expires_at=t - 10),
    }
    await _add(database, *rows.values())
    families = {
        name: [
            RefreshToken(token_hash=_key(), grant_id=row.id, generation=g, created_at=t - DAY) for g in (1, 2)
        ]
        for name, row in rows.items()
        if isinstance(row, Grant)
    }
    await _add(database, *(token for family in families.values() for token in family))
    # The consent of the real flow, expired; the user's session from the flow stays live.
    await execute(database, update(Consent).where(Consent.client_id == client_id).values(expires_at=t - 1))

    await prune(engine, now())

    for name, row in rows.items():
        key = row.__mapper__.primary_key_from_instance(row)[0]
        expect_gone = name.endswith(("expired", "signed_out", "long_ago")) and name != "code_recently_expired"
        (gone if expect_gone else kept).append((type(row), key))
        for token in families.get(name, []):
            (gone if expect_gone else kept).append((RefreshToken, token.token_hash))
    assert [k for k in gone if await _exists(database, *k)] == []
    assert [k for k in kept if not await _exists(database, *k)] == []
    assert await all_rows(database, Consent, Consent.client_id == client_id) == []
    assert (await auth_client.get("/account/apps")).text.count("Signed in as") == 1


async def test_a_code_replayed_after_expiry_still_revokes_its_grant_until_pruned(
    auth_client: httpx.AsyncClient, database: Database, engine: AsyncEngine
) -> None:
    registered = await register(auth_client)
    request = new_request(registered["client_id"])
    code = (await approve_and_sign_in(browser_for(auth_client), request.url()))["code"]
    assert (await redeem(auth_client, request, code)).status_code == 200
    almost = now() - CODE_RETENTION + 120
    await execute(
        database,
        update(AuthorizationCode)
        .where(AuthorizationCode.client_id == registered["client_id"])
        .values(expires_at=almost, created_at=almost - 60),
    )
    await prune(engine, now())
    assert_oauth_error(await redeem(auth_client, request, code), "invalid_grant")
    [grant] = await all_rows(database, Grant, Grant.client_id == registered["client_id"])
    assert grant.revoked_reason == "code_replay"


async def test_audit_events_are_pruned_only_with_a_retention(database: Database, engine: AsyncEngine) -> None:
    marker = uuid.uuid4().hex
    await _add(database, AuditEvent(at=now() - 40 * DAY, event="test_old_event", details={"m": marker}))
    await prune(engine, now())
    assert len(await all_rows(database, AuditEvent, AuditEvent.event == "test_old_event")) >= 1
    await prune(engine, now(), audit_retention_days=30)
    assert await all_rows(database, AuditEvent, AuditEvent.event == "test_old_event") == []


async def test_large_backlogs_go_in_batches(database: Database, engine: AsyncEngine) -> None:
    jtis = [_key() for _ in range(7)]
    await _add(database, *(RevokedAccessToken(jti=jti, expires_at=now() - DAY) for jti in jtis))
    deleted = await prune(engine, now(), batch_size=2)
    assert deleted["revoked_access_tokens"] >= 7
    assert not [jti for jti in jtis if await _exists(database, RevokedAccessToken, jti)]


async def test_a_round_is_skipped_while_another_replica_runs_one(
    database: Database, engine: AsyncEngine
) -> None:
    jti = _key()
    await _add(database, RevokedAccessToken(jti=jti, expires_at=now() - DAY))
    async with engine.connect() as other_replica:
        await other_replica.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        assert await prune(engine, now()) == {}
        assert await _exists(database, RevokedAccessToken, jti)
        await other_replica.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
    assert (await prune(engine, now()))["revoked_access_tokens"] >= 1


async def test_the_service_prunes_on_its_own(
    make_settings: Callable[..., AuthSettings], database: Database
) -> None:
    jti = _key()
    await _add(database, RevokedAccessToken(jti=jti, expires_at=now() - DAY))
    async with serve_in_process(create_app(make_settings(auth_housekeeping_seconds=0.1))):
        for _ in range(100):
            if not await _exists(database, RevokedAccessToken, jti):
                break
            await asyncio.sleep(0.05)
    assert not await _exists(database, RevokedAccessToken, jti)
