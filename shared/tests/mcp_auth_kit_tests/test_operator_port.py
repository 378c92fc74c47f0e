"""Metrics never on the public port (issue 13, finding 1): `protect(metrics_port=...)` and `OperatorPort`."""

from __future__ import annotations

import httpx
import pytest

from mcp_auth_kit.operator_port import OperatorPort

from .conftest import IssuerStandIn, serve_protected, tool_call, unused_port


async def test_metrics_are_served_on_the_metrics_port_only(issuer: IssuerStandIn) -> None:
    metrics_port = unused_port()
    async with (
        serve_protected(issuer.url, metrics_port=metrics_port) as served,
        httpx.AsyncClient() as client,
    ):
        await client.post(
            served.resource_url, json=tool_call("list_notes"), headers={"Accept": "application/json"}
        )
        public = await client.get(f"{served.url}/metrics")
        private = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert public.status_code == 404
    assert private.status_code == 200
    assert 'http_requests_total{method="POST",route="/mcp",status="401"}' in private.text
    assert "mcp_auth_token_checks_total" in private.text


async def test_without_a_metrics_port_there_are_no_metrics_at_all(issuer: IssuerStandIn) -> None:
    async with serve_protected(issuer.url) as served, httpx.AsyncClient() as client:
        assert (await client.get(f"{served.url}/metrics")).status_code == 404


def test_operator_port_serves_metrics_and_documents_and_nothing_else() -> None:
    port = OperatorPort("127.0.0.1", 0, {"/openapi.json": (b'{"openapi": "3.1.0"}', "application/json")})
    port.start()
    try:
        base = f"http://127.0.0.1:{port.port}"
        assert httpx.get(f"{base}/metrics").status_code == 200
        document = httpx.get(f"{base}/openapi.json")
        assert document.json() == {"openapi": "3.1.0"}
        assert document.headers["content-type"] == "application/json"
        assert httpx.get(f"{base}/token").status_code == 404
        assert httpx.post(f"{base}/openapi.json").status_code == 404
    finally:
        port.stop()


def test_a_taken_metrics_port_is_named() -> None:
    first = OperatorPort("127.0.0.1", 0)
    first.start()
    try:
        with pytest.raises(OSError, match=f"operator port 127.0.0.1:{first.port}"):
            OperatorPort("127.0.0.1", first.port).start()
    finally:
        first.stop()
