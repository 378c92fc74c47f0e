"""An OpenTelemetry collector stand-in: receives OTLP/HTTP trace exports and keeps the spans for a test.

A service run with `OTEL_EXPORTER_OTLP_ENDPOINT=<receiver.base_url>` exports to `/v1/traces` exactly as it
would to a real collector; the test then reads what arrived.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    service: str
    trace_id: str
    kind: int
    attributes: dict[str, Any]


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def traces(request: Request) -> Response:
            export = ExportTraceServiceRequest()
            export.ParseFromString(await request.body())
            received = list(_spans(export))
            with self._lock:
                self.spans.extend(received)
            return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

        return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> list[ReceivedSpan]:
        """The spans received once `predicate(spans)` holds; AssertionError listing what came if never."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"expected spans did not arrive; got {[s.name for s in spans]}")
            time.sleep(0.05)


def _spans(export: ExportTraceServiceRequest) -> Any:
    for resource_spans in export.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    name=span.name,
                    service=str(resource.get("service.name", "")),
                    trace_id=span.trace_id.hex(),
                    kind=span.kind,
                    attributes={a.key: _value(a.value) for a in span.attributes},
                )


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
