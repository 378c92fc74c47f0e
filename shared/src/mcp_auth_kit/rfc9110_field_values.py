"""Removes optional whitespace around `Mcp-*` header values before anything compares them.

RFC 9110 §5.5: a field value does not include leading or trailing whitespace (OWS: SP and HTAB);
parsers exclude it. The MCP SDK's transport compares `Mcp-Method`/`Mcp-Name` (and custom `Mcp-Param-*`
headers) with the JSON-RPC body byte for byte, so `Mcp-Name:   calculate  ` would be refused with
-32020 HeaderMismatch although it names `calculate`. This middleware sits in front of the SDK (and of
the kit's own guard, which reads `Mcp-Name` for per-tool scopes), so both see the parsed value.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_PREFIX = b"mcp-"
_OWS = b" \t"


def trimmed_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same header list, with OWS removed around the values of `Mcp-*` fields (names are lower-case)."""
    return [(name, value.strip(_OWS) if name.startswith(_PREFIX) else value) for name, value in headers]


class TrimmedMcpHeaders:
    """ASGI middleware: hands the app a scope whose `Mcp-*` header values carry no OWS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            trimmed = trimmed_headers(headers)
            if trimmed != headers:
                scope = {**scope, "headers": trimmed}
        await self.app(scope, receive, send)
