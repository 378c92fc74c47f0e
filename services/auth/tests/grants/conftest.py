"""Grants called as functions, without HTTP: a runtime on an SQLite file of the test's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.app import build_runtime
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.db.models import Client, User
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.settings import load_settings
from mcp_auth_server.store import consents
from mcp_auth_server.store.authorization_codes import issue_code
from mcp_auth_server.store.clients import create_client
from mcp_auth_server.store.users import upsert_user
from mcp_auth_server.upstreams.base import Identity

from ..conftest import ISSUER, RESOURCE_A, RESOURCES, TEST_SECRET
from ..flow import CLAUDE_CALLBACK, pkce_pair


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await asyncio.to_thread(upgrade, url)  # alembic runs its own event loop
    settings = load_settings(
        auth_issuer=ISSUER,
        auth_database_url=url,
        auth_secret_key=TEST_SECRET,
        auth_upstream="dev",
        auth_resources=RESOURCES,
    )
    built = await build_runtime(settings)
    try:
        yield built
    finally:
        await built.http.aclose()
        await built.engine.dispose()


@dataclass
class Approved:
    """A user who approved a client for resource A: a code waiting to be redeemed, and its verifier."""

    user: User
    client: Client
    code: str
    verifier: str
    scopes: list[str]


async def approve(
    runtime: Runtime,
    session: AsyncSession,
    login: str,
    scopes: list[str],
    grant_types: list[str] | None = None,
) -> Approved:
    user = await upsert_user(session, Identity("dev", login, login=login), runtime.upstream_token_box)
    client, _ = create_client(
        session,
        origin="dcr",
        redirect_uris=[CLAUDE_CALLBACK],
        token_endpoint_auth_method="none",
        grant_types=grant_types or ["authorization_code", "refresh_token"],
    )
    await session.flush()
    await consents.remember(session, user.id, client.client_id, RESOURCE_A, scopes, 3600)
    verifier, challenge = pkce_pair()
    code = issue_code(
        session,
        client_id=client.client_id,
        user_id=user.id,
        redirect_uri=CLAUDE_CALLBACK,
        code_challenge=challenge,
        resource=RESOURCE_A,
        scopes=scopes,
        auth_time=user.last_login_at or 0,
        ttl=60,
    )
    await session.commit()
    return Approved(user, client, code, verifier, scopes)
