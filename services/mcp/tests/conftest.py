"""Fixtures that run `mcp-tools serve` as an operator would, and connect the `mcp` SDK's client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_testing.processes import ServiceProcess, free_port, venv_script


def serve_tools(env: Mapping[str, str], port: int | None = None) -> ServiceProcess:
    """`mcp-tools serve` on a free loopback port, started and ready; its resource URL is on that port."""
    port = port or free_port()
    return ServiceProcess(
        [venv_script("mcp-tools"), "serve"],
        port=port,
        env={"MCP_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp", "MCP_PORT": str(port), **env},
    ).start()


@asynccontextmanager
async def mcp_client(
    url: str,
    *,
    mode: str = "auto",
    token: str | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, optionally presenting a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, transport=transport) as http,
        Client(
            streamable_http_client(url, http_client=http),
            mode=mode,
        ) as client,
    ):
        yield client


@asynccontextmanager
async def sse_mcp_client(url: str, *, token: str | None = None) -> AsyncIterator[Client]:
    """The SDK's client over the legacy SSE transport."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with Client(sse_client(url, headers=headers), mode="legacy") as client:
        yield client


@pytest.fixture(scope="session")
def tools_without_auth() -> Iterator[ServiceProcess]:
    """One MCP service with MCP_AUTH=off for the session."""
    service = serve_tools({"MCP_AUTH": "off"})
    yield service
    service.stop()
