"""`mcp-auth serve` and `mcp-tools serve` export traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is
set: server spans, database spans (SQLAlchemy and the raw asyncpg statements), each with the request id.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mcp_testing.background_server import BackgroundServer
from mcp_testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from mcp_testing.processes import ServiceProcess, free_port, venv_script

from ..auth_process import dev_auth_service


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, dict[str, str]]]:
    collector = OtlpReceiver()
    with BackgroundServer(collector.app()) as server:
        # Export every 100 ms instead of every 5 s, so the test does not wait.
        yield collector, {"OTEL_EXPORTER_OTLP_ENDPOINT": server.base_url, "OTEL_BSP_SCHEDULE_DELAY": "100"}


def with_request_id(spans: list[ReceivedSpan], request_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.attributes.get("request.id") == request_id]


def test_auth_service_traces_requests_and_database_statements(
    migrated_database: str, receiver: tuple[OtlpReceiver, dict[str, str]]
) -> None:
    collector, env = receiver
    with dev_auth_service(migrated_database, env=env) as service:
        metadata = httpx.get(
            f"{service.issuer}/.well-known/oauth-authorization-server",
            headers={"X-Request-Id": "trace-metadata-1"},
            trust_env=False,
        )
        assert metadata.status_code == 200
        ready = httpx.get(
            f"{service.issuer}/readyz", headers={"X-Request-Id": "trace-ready-1"}, trust_env=False
        )
        assert ready.status_code == 200
        spans = collector.wait_for(
            lambda spans: (
                with_request_id(spans, "trace-metadata-1")
                and len(with_request_id(spans, "trace-ready-1")) >= 2
            )
        )
    server = [s for s in with_request_id(spans, "trace-metadata-1") if s.name.startswith("GET ")]
    assert server, "the request's server span carries its request id"
    assert {s.service for s in spans} == {"mcp-auth-server"}
    database = with_request_id(spans, "trace-ready-1")
    scopes = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in database}
    assert "postgresql" in scopes, f"database spans for /readyz: {[(s.name, s.attributes) for s in database]}"


def test_mcp_service_traces_requests(receiver: tuple[OtlpReceiver, dict[str, str]]) -> None:
    collector, env = receiver
    port = free_port()
    with ServiceProcess(
        [venv_script("mcp-tools"), "serve"],
        port=port,
        env={"MCP_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp", "MCP_AUTH": "off", **env},
    ) as service:
        httpx.get(
            f"{service.url}/.well-known/oauth-protected-resource", headers={"X-Request-Id": "trace-mcp-1"}
        )
        spans = collector.wait_for(lambda spans: with_request_id(spans, "trace-mcp-1"))
    assert {s.service for s in with_request_id(spans, "trace-mcp-1")} == {"mcp-tools-server"}
