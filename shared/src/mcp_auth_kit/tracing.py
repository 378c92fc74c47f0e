"""Optional OpenTelemetry tracing, on when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Off, nothing is imported and nothing runs per request. On, a service's FastAPI app and every httpx
client export spans over OTLP/HTTP (the `OTEL_*` variables configure the exporter, `OTEL_SERVICE_NAME`
the service's name); each span of a request carries its request id (`request.id`, the same value as
`X-Request-Id` and the log lines), so a trace and its logs find each other.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mcp_auth_kit.observability import current_request_id, request_id_listeners

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
REQUEST_ID_ATTRIBUTE = "request.id"
# Probes every few seconds per replica would drown the traces worth reading.
EXCLUDED_URLS = "healthz,readyz"
_provider: TracerProvider | None = None


def tracing_enabled() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def tracer_provider() -> TracerProvider | None:
    """The process's provider once tracing is set up, else None."""
    return _provider


def setup_tracing(app: FastAPI, service_name: str, *, exporter: SpanExporter | None = None) -> bool:
    """Trace `app` and outbound httpx calls when an OTLP endpoint is configured (or `exporter` given).

    Returns whether tracing is on. The provider and the httpx instrumentation are process-wide and
    set up once; each app is instrumented on its own.
    """
    if exporter is None and not tracing_enabled():
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider = _process_provider(service_name, exporter)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    return True


def _process_provider(service_name: str, exporter: SpanExporter | None) -> TracerProvider:
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # OTEL_SERVICE_NAME, when set, names the service; else the service's own name.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(_request_id_processor())
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    request_id_listeners.append(_tag_current_span)
    _provider = provider
    return provider


def _tag_current_span(request_id: str) -> None:
    """The request's server span (current while the request is handled) gets its request id."""
    from opentelemetry import trace

    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def _request_id_processor() -> Any:
    """Every span started while a request is handled (database, outbound HTTP) carries its request id."""
    from opentelemetry.sdk.trace import SpanProcessor

    class RequestIdProcessor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            request_id = current_request_id()
            if request_id is not None:
                span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)

    return RequestIdProcessor()
