"""Request bodies are bounded while they stream, for every endpoint, whatever the framing.

A `Content-Length` above the limit is refused before any of the body is read (uvicorn never delivers
more than the declared length); a chunked body is counted as it arrives and refused as soon as the count
passes the limit, so at most the limit is ever held in memory. The refusal is 413 with an OAuth-style
JSON error, or an HTML page for a browser (a request that accepts `text/html`: the consent and sign-in
forms).

Pure ASGI, not BaseHTTPMiddleware: the body is never buffered here, only counted.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_auth_server.oauth.errors import NO_STORE


class _BodyTooLarge(Exception):
    """Raised to the handler from `receive`; caught here, where the 413 is written."""


class BoundedBodies:
    def __init__(self, app: ASGIApp, *, limit: int, page: Callable[[str], Response]) -> None:
        self.app = app
        self.limit = limit
        self.page = page  # a person's 413 page, given the message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(scope)(scope, receive, send)
                return
            if not _header(scope, b"transfer-encoding"):
                # The server reads no more than a declared length: nothing to count (the hot path).
                await self.app(scope, receive, send)
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:  # a handler that answered before reading all of its body; nothing more to say
                return
            await self._refuse(scope)(scope, receive, send)

    def _refuse(self, scope: Scope) -> Response:
        message = f"the request body is larger than {self.limit} bytes"
        if "text/html" in Headers(scope=scope).get("accept", ""):
            return self.page(message)
        body = {"error": "invalid_request", "error_description": message}
        # The rest of the body is not read: the connection is closed after this answer.
        return JSONResponse(body, status_code=413, headers={**NO_STORE, "Connection": "close"})


def _header(scope: Scope, name: bytes) -> str:
    """One header's value, read from the raw list: cheaper than building Headers on every request."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""
