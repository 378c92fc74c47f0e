"""The app's error handlers: a value Postgres refuses is the client's fault (400), never a 500."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from sqlalchemy import text

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings

from .conftest import serve_in_process


async def test_a_value_the_database_refuses_is_invalid_request(
    make_settings: Callable[..., AuthSettings],
) -> None:
    app = create_app(make_settings())

    @app.get("/probe")
    async def probe(request: Request) -> None:
        # A real asyncpg DataError (SQLSTATE 22P02, invalid text representation), as unchecked input causes.
        async with request.app.state.runtime.sessions() as session:
            await session.execute(text("SELECT CAST(:value AS INTEGER)"), {"value": "not a number"})

    async with serve_in_process(app) as client:
        response = await client.get("/probe")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


async def test_an_oversized_body_is_refused_by_its_declared_length(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings())) as client:
        token = await client.post(
            "/token",
            content=b"grant_type=x",
            headers={"content-type": "application/x-www-form-urlencoded", "content-length": str(10**9)},
        )
        register = await client.post(
            "/register",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": str(10**9)},
        )
    assert token.status_code == 413  # web/body_limits.py, before any of the body is read
    assert token.json()["error"] == "invalid_request"
    assert register.status_code == 413
    assert register.json()["error"] == "invalid_request"
