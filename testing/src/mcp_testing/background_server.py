"""Serves an ASGI app with uvicorn on a background thread, so a test talks to it over real HTTP.

The socket is bound before uvicorn starts (port 0 lets the kernel choose), so there is no window in which
another process could take the port between choosing and binding it.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Literal, Self

import uvicorn
from starlette.types import ASGIApp

from mcp_testing.tls import ServerCertificate


class BackgroundServer:
    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: Literal["on", "off"] = "off",
        tls: ServerCertificate | None = None,
    ) -> None:
        self._app = app
        self._tls = tls
        self._host = host
        self._port = port
        self._lifespan = lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"{'https' if self._tls else 'http'}://{self._host}:{self._port}"

    def start(self, timeout: float = 10.0) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        # A short graceful shutdown: requests parked by a "timeout" failure must not hold up stop().
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan=self._lifespan,
            timeout_graceful_shutdown=1,
            ssl_certfile=self._tls.cert_file if self._tls else None,
            ssl_keyfile=self._tls.key_file if self._tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"uvicorn did not start on {self._host}:{self._port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServedInBackground:
    """start/stop and `with` for a stand-in served by its own BackgroundServer (`self._server`)."""

    _server: BackgroundServer

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
