"""Fixtures for the auth service's tests: a migrated Postgres database and in-process apps."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.app import create_app
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.settings import AuthSettings, load_settings

ISSUER = "http://127.0.0.1:9000"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
RESOURCE_A = "http://127.0.0.1:9101/mcp"
RESOURCE_B = "http://127.0.0.1:9102/mcp"
RESOURCES = [
    {
        "resource": RESOURCE_A,
        "scopes": ["mcp:tools", "github:repos"],
        "default_scopes": ["mcp:tools"],
        "name": "A",
        "upstream_token_scope": "github:repos",
    },
    {"resource": RESOURCE_B, "scopes": ["mcp:tools"], "name": "B"},
]


@pytest.fixture(scope="session")
def migrated_database(postgres_database: str) -> str:
    upgrade(postgres_database)
    return postgres_database


@pytest.fixture
def make_settings(migrated_database: str) -> Callable[..., AuthSettings]:
    def make(**overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "auth_issuer": ISSUER,
            "auth_database_url": migrated_database,
            "auth_secret_key": TEST_SECRET,
            "auth_upstream": "dev",
            "auth_resources": RESOURCES,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
async def database(migrated_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database, for arranging (time travel) and inspecting what the app stored."""
    engine = create_engine(migrated_database)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def serve_in_process(
    app: FastAPI, base_url: str = ISSUER, real_hosts: tuple[str, ...] = ()
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, reached through httpx without a socket.

    URLs under `real_hosts` (e.g. the GitHub stand-in's base URL) go over the network instead, so
    a browser driven through this client can leave the app and come back.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        mounts: dict[str, httpx.AsyncBaseTransport] = {
            host: httpx.AsyncHTTPTransport() for host in real_hosts
        }
        async with httpx.AsyncClient(
            transport=transport, mounts=mounts, base_url=base_url, follow_redirects=False
        ) as client:
            yield client


@pytest.fixture
async def auth_app(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[FastAPI]:
    """A started app (lifespan run) for tests that need several independent browsers on it."""
    app = create_app(make_settings())
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, base_url: str = ISSUER) -> httpx.AsyncClient:
    """A connection to a started app with a cookie jar of its own (another browser, another client)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, follow_redirects=False
    )


@pytest.fixture
async def auth_client(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings())) as client:
        yield client
