"""Metrics never on the public port (issue 13, finding 1): `protect(metrics_port=...)` and `OperatorPort`.

Every way the kit serves a server keeps `/metrics` off the public port: `protect()` of an SDK server
(with and without auth), `protect()` of a FastMCP server, and FastMCP's own app with `KitAuthProvider`.
"""

from __future__ import annotations

import httpx
import pytest

from mcp_auth_kit import protect
from mcp_auth_kit.fastmcp_auth import KitAuthProvider
from mcp_auth_kit.operator_port import OperatorPort

from .conftest import (
    LEGACY_HEADERS,
    IssuerStandIn,
    notes_server,
    serve,
    serve_protected,
    tool_call,
    unused_port,
)
from .test_fastmcp import fastmcp_notes, serve_fastmcp
from .test_start_up import lifespan_startup


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


async def test_a_taken_metrics_port_stops_start_up_with_one_line(issuer: IssuerStandIn) -> None:
    taken = OperatorPort("127.0.0.1", 0)
    taken.start()
    try:
        app = protect(
            notes_server().mcp,
            resource_url="http://127.0.0.1:9/mcp",
            issuer=issuer.url,
            metrics_port=taken.port,
        )
        message = await lifespan_startup(app)
    finally:
        taken.stop()
    assert message["type"] == "lifespan.startup.failed"
    assert message["message"].startswith(f"operator port 127.0.0.1:{taken.port}: ")
    assert "\n" not in message["message"]


async def test_metrics_stay_off_the_public_port_without_auth_too() -> None:
    """`auth=False` (benchmark baselines) keeps the same split: metrics on the operator port only."""
    metrics_port = unused_port()
    async with (
        serve_protected("http://127.0.0.1:9", auth=False, metrics_port=metrics_port) as served,
        httpx.AsyncClient() as client,
    ):
        public = await client.get(f"{served.url}/metrics")
        private = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert public.status_code == 404
    assert private.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")  # closed with the app


async def test_fastmcp_behind_protect_serves_metrics_on_the_metrics_port_only(issuer: IssuerStandIn) -> None:
    metrics_port = unused_port()
    async with (
        serve_fastmcp(issuer.url, metrics_port=metrics_port) as served,
        httpx.AsyncClient() as client,
    ):
        await client.post(served.resource_url, json=tool_call("list_notes"), headers=LEGACY_HEADERS)
        public = await client.get(f"{served.url}/metrics")
        private = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert public.status_code == 404
    assert private.status_code == 200
    assert 'http_requests_total{method="POST",route="/mcp",status="401"}' in private.text
    assert "mcp_auth_token_checks_total" in private.text


async def test_the_fastmcp_provider_alone_serves_metrics_on_the_metrics_port_only(
    issuer: IssuerStandIn,
) -> None:
    port, metrics_port = unused_port(), unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    server = fastmcp_notes().server
    server.auth = KitAuthProvider(
        resource_url=resource, issuer=issuer.url, scopes=["mcp:tools"], metrics_port=metrics_port
    )
    async with (
        serve(server.http_app(path="/mcp", stateless_http=True), port) as url,
        httpx.AsyncClient() as client,
    ):
        bad = {**LEGACY_HEADERS, "Authorization": "Bearer abc.def.ghi"}
        await client.post(resource, json=tool_call("list_notes"), headers=bad)
        public = await client.get(f"{url}/metrics")
        private = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert public.status_code == 404
    assert private.status_code == 200
    assert "mcp_auth_token_checks_total" in private.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")  # closed with the app
