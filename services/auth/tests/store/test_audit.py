"""Audit rows written at once (`record_now`): with the request's changes when it made any, else alone."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.db.models import AuditEvent
from mcp_auth_server.db.statements import holds_transaction
from mcp_auth_server.store import audit


async def rows_for(database: async_sessionmaker[AsyncSession], client_id: str) -> int:
    """Rows of this test's own client id (the database is shared with other tests)."""
    async with database() as session:
        mine = select(func.count()).select_from(AuditEvent).where(AuditEvent.client_id == client_id)
        return int(await session.scalar(mine) or 0)


async def test_a_row_recorded_now_rolls_back_with_the_changes_of_its_request(
    database: async_sessionmaker[AsyncSession],
) -> None:
    client_id = f"audit-{uuid.uuid4()}"
    async with database() as session:
        await session.execute(text("SELECT 1"))  # the request has begun its transaction
        await audit.record_now(session, "identity_assertion_grant", client_id=client_id, idp="https://idp")
        assert holds_transaction(session)
        await session.rollback()
    assert await rows_for(database, client_id) == 0


async def test_changes_still_pending_in_the_session_go_first_and_share_the_transaction(
    database: async_sessionmaker[AsyncSession],
) -> None:
    client_id = f"audit-{uuid.uuid4()}"
    async with database() as session:
        audit.record(session, "enterprise_user_linked", client_id=client_id, how="created")
        await audit.record_now(session, "identity_assertion_grant", client_id=client_id, idp="https://idp")
        await session.rollback()
    assert await rows_for(database, client_id) == 0
    async with database() as session:
        audit.record(session, "enterprise_user_linked", client_id=client_id, how="created")
        await audit.record_now(session, "identity_assertion_grant", client_id=client_id, idp="https://idp")
        await session.commit()
    assert await rows_for(database, client_id) == 2


async def test_the_only_write_of_a_request_is_committed_as_it_runs(
    database: async_sessionmaker[AsyncSession],
) -> None:
    client_id = f"audit-{uuid.uuid4()}"
    async with database() as session:
        await audit.record_now(
            session, "identity_assertion_grant", client_id=client_id, idp="https://idp", scopes=["a"]
        )
        assert not holds_transaction(session)  # nothing left for the request's edge to commit
    async with database() as session:
        row = await session.scalar(select(AuditEvent).where(AuditEvent.client_id == client_id))
    assert row is not None
    assert (row.event, row.details) == ("identity_assertion_grant", {"idp": "https://idp", "scopes": ["a"]})
