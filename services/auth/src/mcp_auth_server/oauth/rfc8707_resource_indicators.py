"""Resource indicators (RFC 8707): naming the MCP server a token is for, and matching it.

§2: the value is an absolute URI without a fragment. We compare canonical forms: scheme and
host lower-cased, default port dropped, an empty path read as "/", everything else exact —
so `/mcp` never matches `/mcp/` or `/mcp-other`, and a client cannot widen its audience.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidResource(ValueError):
    """Not an absolute http(s) URI without a fragment."""


def canonical_resource(value: str) -> str:
    if "#" in value:
        raise InvalidResource("resource must not contain a fragment")
    # RFC 3986 §2 has no whitespace or control characters; urlsplit would silently delete tabs and
    # newlines and strip leading spaces, turning a malformed value into some other valid one.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidResource("resource must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise InvalidResource("resource is not a valid URI") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidResource("resource must be an absolute http(s) URI")
    if parts.username is not None or parts.password is not None:
        raise InvalidResource("resource must not contain user information")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
