"""Structured JSON logs tied together by a request id, and Prometheus metrics per route, for every service.

Use `setup_json_logging()` once at start-up (run uvicorn with `log_config=None` so it keeps these
handlers), add `ObservabilityMiddleware` outermost, and serve `metrics_endpoint` at `/metrics`.
Log lines carry the path without its query string and never headers, so no credential reaches a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import IO, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# Called with each request's id once it is known (tracing.py tags the request's span); empty unless on.
request_id_listeners: list[Callable[[str], None]] = []

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# An incoming id is echoed only if it cannot forge log structure or explode label cardinality.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
_UNMATCHED = "<unmatched>"
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
access_logger = logging.getLogger("mcp_auth_kit.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_json_logging(level: int | str = logging.INFO, stream: IO[str] | None = None) -> None:
    """Route every logger (uvicorn's too) through one JSON handler on the root logger."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Our access log replaces uvicorn's, which would log the query string.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def current_request_id() -> str | None:
    return request_id_var.get()


class ObservabilityMiddleware:
    """Assigns (or honours) `X-Request-Id`, echoes it, logs one access line and records metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[Any, str] = {}

    def _route(self, scope: Scope) -> str:
        """The matched route's path template (bounded label cardinality), never the raw path."""
        route = scope.get("route")  # set by Starlette's router and for FastAPI's own routes
        if route is not None:
            return str(getattr(route, "path", _UNMATCHED))
        # FastAPI's router leaves only the `endpoint` of a plain Starlette route or mount in the scope.
        endpoint = scope.get("endpoint")
        if endpoint is not None and endpoint not in self._templates:
            for candidate in getattr(scope.get("app"), "routes", ()):
                target = (
                    candidate.app if isinstance(candidate, Mount) else getattr(candidate, "endpoint", None)
                )
                self._templates.setdefault(target, getattr(candidate, "path", _UNMATCHED))
        return self._templates.get(endpoint, _UNMATCHED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = incoming if incoming and _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        context = request_id_var.set(request_id)
        for listener in request_id_listeners:
            listener(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self._route(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(elapsed)
            access_logger.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 3)},
            )
            request_id_var.reset(context)


async def metrics_endpoint(_: Request) -> Response:
    """Prometheus text exposition of every metric in the default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
