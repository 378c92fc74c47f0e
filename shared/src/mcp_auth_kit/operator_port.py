"""Operator endpoints (`/metrics`, and documents a service adds) on a port of their own, never the public one.

The public port faces the internet through an ingress; metrics reveal routes, rates and error counts
and belong to the cluster's Prometheus only. `OperatorPort` serves them from a small threaded WSGI
server beside the application, so a busy event loop never delays a scrape.

Several worker processes (`--workers N`) aggregate: with `PROMETHEUS_MULTIPROC_DIR` set (the services'
`serve` commands set it before starting workers) every worker records into that directory, binds the
operator port with SO_REUSEPORT, and answers a scrape with the sum over all workers
(prometheus-client's multiprocess mode), whichever worker the kernel hands the connection to.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess

logger = logging.getLogger(__name__)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
# A document served as is on the operator port: (body, media type).
Document = tuple[bytes, str]


def metrics_registry() -> CollectorRegistry:
    """This process's metrics, or every worker's summed when running in multiprocess mode."""
    if not os.environ.get(MULTIPROCESS_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def prepare_multiprocess_metrics() -> str | None:
    """Before starting worker processes: an empty metrics directory they all write to.

    Must run before anything creates a metric (prometheus-client's storage depends on the directory).
    An operator's own `PROMETHEUS_MULTIPROC_DIR` is honoured and emptied of a previous run's files;
    otherwise a temporary one is made. Returns the directory to remove when the workers are gone
    (None for the operator's own).
    """
    chosen = os.environ.get(MULTIPROCESS_VARIABLE)
    directory = chosen or tempfile.mkdtemp(prefix="prometheus-")
    os.makedirs(directory, exist_ok=True)
    for entry in os.listdir(directory):
        if entry.endswith(".db"):
            os.unlink(os.path.join(directory, entry))
    os.environ[MULTIPROCESS_VARIABLE] = directory
    return None if chosen else directory


def remove_multiprocess_metrics(directory: str | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s are not worth a log line each."""


class OperatorPort:
    """`/metrics` plus `documents` (path -> (body, media type)) on `host:port`, in a daemon thread."""

    def __init__(self, host: str, port: int, documents: Mapping[str, Document] | None = None) -> None:
        self.host, self.port = host, port
        self._documents = dict(documents or {})
        self._metrics = make_wsgi_app(metrics_registry())
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve; an address in use raises OSError naming it."""
        shared = bool(os.environ.get(MULTIPROCESS_VARIABLE))
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = type(
            "OperatorServer", (_Server,), {"address_family": family, "allow_reuse_port": shared}
        )
        try:
            self._server = server_class((self.host, self.port), _QuietHandler)
        except OSError as exc:
            raise OSError(exc.errno, f"operator port {self.host}:{self.port}: {exc.strerror}") from None
        self._server.set_app(self._app)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="operator-port", daemon=True)
        self._thread.start()
        logger.info("operator endpoints on %s:%d", self.host, self.port, extra={"paths": self.paths})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def paths(self) -> list[str]:
        return ["/metrics", *self._documents]

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics(environ, start_response)
            return body
        document = self._documents.get(path)
        if document is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        content, media_type = document
        start_response("200 OK", [("Content-Type", media_type), ("Content-Length", str(len(content)))])
        return [content]
