"""Health endpoints: alive, and ready only with a reachable database and a signing key."""

from __future__ import annotations

import httpx
import pytest


async def test_healthz_is_alive(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_signing_key(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "signing_key": "ok"}


async def test_request_id_is_echoed_and_requests_are_counted_in_metrics(
    auth_client: httpx.AsyncClient,
) -> None:
    response = await auth_client.get("/healthz", headers={"X-Request-Id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    generated = await auth_client.get("/healthz")
    assert len(generated.headers["x-request-id"]) >= 16


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs", "/redoc"])
async def test_operator_documents_are_not_on_the_public_port(
    auth_client: httpx.AsyncClient, path: str
) -> None:
    assert (await auth_client.get(path)).status_code == 404
