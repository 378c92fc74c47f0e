"""What request handlers share: the runtime, and one transaction per request committed at the edge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.statements import holds_transaction
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hand-off on every request.
    return runtime_of(request)


@contextlib.asynccontextmanager
async def transaction(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the handler's block completes, rolled back when it
    raises — except for refusals that must stick (a family revoked for reuse, a user deprovisioned)."""
    async with runtime.sessions() as session:
        try:
            yield session
        except (OAuthError, CredentialRefused) as refusal:
            if refusal.persist:
                await _commit(session)
            raise
        await _commit(session)


async def _commit(session: AsyncSession) -> None:
    # A request that neither read, wrote nor added anything (a client_credentials token from a cached
    # client record) has nothing to commit: SQLAlchemy would still begin and commit an empty session
    # transaction, a twentieth of such a request's CPU. Nor has one whose statements all ran outside a
    # transaction (an ID-JAG for a known user: a read, then its audit row): the session's commit would
    # send nothing, and its bookkeeping cost about a tenth of such a request's CPU.
    pending = bool(session.new or session.dirty or session.deleted)
    if pending or (session.in_transaction() and holds_transaction(session)):
        await session.commit()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
