"""The counters the alert rules watch (deploy/monitoring/alerts.yaml) count what they claim to."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store import audit
from mcp_testing.processes import free_port

from .conftest import serve_in_process


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_audit_events_are_counted_by_name(database: async_sessionmaker[AsyncSession]) -> None:
    before = sample("mcp_auth_audit_events_total", event="refresh_token_reuse")
    async with database() as session:
        audit.record(session, "refresh_token_reuse", client_id="c")
        await session.rollback()
    assert sample("mcp_auth_audit_events_total", event="refresh_token_reuse") == before + 1


async def test_an_unreachable_redis_is_a_503_and_counted(make_settings: Callable[..., AuthSettings]) -> None:
    """AUTH_REDIS_URL down: the request that needs the shared state is refused, never let through."""
    app = create_app(make_settings(auth_redis_url=f"redis://127.0.0.1:{free_port()}/0"))

    @app.post("/uses-the-replay-cache")
    async def uses_the_replay_cache(request: Request) -> dict[str, bool]:
        return {"first": await request.app.state.runtime.replay.first_use("test", "jti-1", 2_000_000_000)}

    before = sample("mcp_auth_shared_state_unavailable_total")
    async with serve_in_process(app) as client:
        response = await client.post("/uses-the-replay-cache")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "2"
    assert sample("mcp_auth_shared_state_unavailable_total") == before + 1


async def test_a_database_outage_is_counted(make_settings: Callable[..., AuthSettings]) -> None:
    app = create_app(make_settings())

    @app.get("/database-gone")
    async def database_gone() -> None:
        raise OperationalError("SELECT 1", None, ConnectionRefusedError())

    before = sample("mcp_auth_database_unavailable_total")
    async with serve_in_process(app) as client:
        assert (await client.get("/database-gone")).status_code == 503
    assert sample("mcp_auth_database_unavailable_total") == before + 1
