"""Optional tracing (mcp_auth_kit/tracing.py): off and free without an OTLP endpoint; on, every span of a
request carries its request id, the server's and the outbound httpx calls' alike.

Each case runs in a fresh interpreter: OpenTelemetry's provider and instrumentations are process-wide,
and the rest of the suite must run untraced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

OFF = """
import sys
from fastapi import FastAPI
from mcp_auth_kit.tracing import setup_tracing
assert setup_tracing(FastAPI(), "kit-test") is False
# FastAPI itself imports the OpenTelemetry API when it is installed; the SDK, exporter and instrumentations
# are what costs, and nothing of them may be loaded.
costly = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")
print(json.dumps(sorted(name for name in sys.modules if name.startswith(costly))))
"""

IN_MEMORY = """
import asyncio, http.server, threading
import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from mcp_auth_kit.observability import ObservabilityMiddleware
from mcp_auth_kit.tracing import setup_tracing

class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass

upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=upstream.serve_forever, daemon=True).start()

app = FastAPI()

@app.get("/outbound")
async def outbound() -> dict:
    async with httpx.AsyncClient() as client:
        status = (await client.get(f"http://127.0.0.1:{upstream.server_address[1]}/thing")).status_code
    return {"upstream": status}

app.add_middleware(ObservabilityMiddleware)
exporter = InMemorySpanExporter()
assert setup_tracing(app, "kit-test", exporter=exporter) is True

async def main() -> list:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        named = await client.get("/outbound", headers={"X-Request-Id": "trace-me-1"})
        generated = await client.get("/outbound")
    return [named.headers["x-request-id"], generated.headers["x-request-id"]]

ids = asyncio.run(main())
spans = [
    {
        "name": span.name,
        "kind": span.kind.name,
        "trace": format(span.context.trace_id, "032x"),
        "request_id": span.attributes.get("request.id"),
        "service": span.resource.attributes.get("service.name"),
    }
    for span in exporter.get_finished_spans()
]
print(json.dumps({"ids": ids, "spans": spans}))
"""


def run_python(source: str, **env: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + source],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_an_endpoint_no_tracing_machinery_is_loaded() -> None:
    assert run_python(OFF) == []


def test_spans_of_a_request_carry_its_request_id() -> None:
    report = run_python(IN_MEMORY)
    named_id, generated_id = report["ids"]
    assert named_id == "trace-me-1"
    spans = report["spans"]
    for request_id in (named_id, generated_id):
        mine = [span for span in spans if span["request_id"] == request_id]
        kinds = {span["kind"] for span in mine}
        assert {"SERVER", "CLIENT"} <= kinds, mine  # the request itself and its outbound httpx call
        assert len({span["trace"] for span in mine}) == 1, "one trace per request"
        server = next(span for span in mine if span["kind"] == "SERVER")
        assert server["name"] == "GET /outbound"
    assert {span["service"] for span in spans} == {"kit-test"}


def test_otel_service_name_wins() -> None:
    report = run_python(IN_MEMORY, OTEL_SERVICE_NAME="tools-east")
    assert {span["service"] for span in report["spans"]} == {"tools-east"}
