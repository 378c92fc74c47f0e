"""`mcp-tools serve` with MCP_AUTH=off, driven by the real `mcp` SDK client over every transport it offers."""

from __future__ import annotations

import itertools
import json

import httpx
import httpx2
import pytest
from mcp import Client

from mcp_testing.processes import ServiceProcess, free_port, venv_script

from .conftest import mcp_client, serve_tools, sse_mcp_client

TOOLS = ["calculate", "get_github_repos", "get_user_info"]
JSON_RPC_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _text(result: object) -> str:
    content = getattr(result, "content", [])
    return " ".join(getattr(part, "text", "") for part in content)


async def _check_every_tool(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(listed) == TOOLS
    assert all(tool.description and tool.input_schema["type"] == "object" for tool in listed.values())
    assert listed["calculate"].input_schema["required"] == ["expression"]

    answer = await client.call_tool("calculate", {"expression": "7 ** 8"})
    assert (answer.is_error, _text(answer)) == (False, "5764801")

    refused = await client.call_tool("calculate", {"expression": "9**9**9"})
    assert refused.is_error
    assert "result is too large" in _text(refused)

    anonymous = await client.call_tool("get_user_info", {})
    assert anonymous.is_error
    assert "runs without authentication (MCP_AUTH=off)" in _text(anonymous)

    no_user = await client.call_tool("get_github_repos", {"limit": 5})
    assert no_user.is_error
    assert "needs a signed-in user" in _text(no_user)


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy", "auto"])
async def test_streamable_http_serves_every_tool(tools_without_auth: ServiceProcess, mode: str) -> None:
    async with mcp_client(tools_without_auth.url + "/mcp", mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await _check_every_tool(client)


async def test_legacy_sse_serves_every_tool(tools_without_auth: ServiceProcess) -> None:
    async with sse_mcp_client(tools_without_auth.url + "/sse") as client:
        await _check_every_tool(client)


async def test_protocol_2025_06_18_over_plain_json_rpc(tools_without_auth: ServiceProcess) -> None:
    """The SDK's client offers only its newest handshake version, so this speaks 2025-06-18 by hand."""
    url = tools_without_auth.url + "/mcp"
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "calculate", "arguments": {"expression": "(1 + 2) * -3 ** 2"}},
    }
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        started = await http.post(url, json=initialize)
        assert started.json()["result"]["protocolVersion"] == "2025-06-18"
        # Stateless: no session to carry from one request to the next.
        assert "mcp-session-id" not in started.headers
        answered = await http.post(url, json=call, headers={"MCP-Protocol-Version": "2025-06-18"})
    assert answered.headers["content-type"].startswith("application/json")
    assert answered.json()["result"]["content"] == [{"type": "text", "text": "-27"}]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Host": "localhost:1"}, 421),
        ({"Origin": "http://evil.example"}, 403),
    ],
)
async def test_dns_rebinding_is_refused(
    tools_without_auth: ServiceProcess, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        response = await http.post(tools_without_auth.url + "/mcp", content=b"{}", headers=headers)
    assert response.status_code == status


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_only_on_the_metrics_port(workers: str) -> None:
    """/metrics is for Prometheus, never on the public port; with several workers every scrape sums them."""
    metrics_port = free_port()
    port = free_port()
    service = ServiceProcess(
        [venv_script("mcp-tools"), "serve", "--workers", workers],
        port=port,
        env={
            "MCP_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp",
            "MCP_AUTH": "off",
            "MCP_METRICS_PORT": str(metrics_port),
        },
    )
    with service:
        for _ in range(10):
            assert httpx.get(f"{service.url}/healthz").status_code == 200
        assert httpx.get(f"{service.url}/metrics").status_code == 404
        scrapes = {httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text for _ in range(6)}
    counts = {
        line.rsplit(" ", 1)[1]
        for text in scrapes
        for line in text.splitlines()
        if line.startswith('http_requests_total{method="GET",route="/healthz",status="200"}')
    }
    assert counts == {"10.0"}, "every scrape reports every worker's requests"


async def test_health_and_readiness(tools_without_auth: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=tools_without_auth.url) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 200
        assert "x-request-id" in response.headers


async def test_log_lines_are_json_with_a_request_id(tools_without_auth: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        await http.get(tools_without_auth.url + "/healthz", headers={"X-Request-Id": "trace-me-42"})
    lines = [json.loads(line) for line in tools_without_auth.log_text().splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "trace-me-42" for line in lines)


class _RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer without sticky sessions: each request goes to the next replica, Host unchanged."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = itertools.cycle(ports)
        self._transport = httpx2.AsyncHTTPTransport()
        self.used: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.used.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_replicas_need_no_sticky_sessions(tools_without_auth: ServiceProcess, mode: str) -> None:
    # A second replica with the same public URL, listening on a port of its own.
    replica = serve_tools({"MCP_AUTH": "off", "MCP_RESOURCE_URL": tools_without_auth.url + "/mcp"})
    try:
        balancer = _RoundRobin([tools_without_auth.port, replica.port])
        async with mcp_client(tools_without_auth.url + "/mcp", mode=mode, transport=balancer) as client:
            for n in range(4):
                assert _text(await client.call_tool("calculate", {"expression": f"{n} + 1"})) == str(n + 1)
        assert set(balancer.used) == {tools_without_auth.port, replica.port}
    finally:
        replica.stop()
