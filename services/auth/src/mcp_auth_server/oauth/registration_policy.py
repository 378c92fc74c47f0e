"""Who may register clients dynamically (RFC 7591), and with which redirect URIs.

Settings: registration on or off; an optional initial access token (RFC 7591 §3, sent as a
Bearer token); and allowed redirect URI patterns — exact URIs, `*` standing for one path
segment (`https://chatgpt.com/connector/oauth/*`), and the word `loopback` for any
http://127.0.0.1|[::1]|localhost redirect (Claude Code, the MCP Inspector).
"""

from __future__ import annotations

import hmac
import re

from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.oauth.rfc8252_redirect_uris import is_loopback_redirect
from mcp_auth_server.settings import AuthSettings

LOOPBACK = "loopback"


def check_may_register(settings: AuthSettings, authorization: str | None) -> None:
    """`authorization`: the request's Authorization header, which carries the initial access token."""
    if not settings.auth_registration_enabled:
        raise OAuthError("access_denied", "dynamic client registration is disabled on this server", 403)
    expected = settings.auth_registration_token
    if expected is None:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.get_secret_value().encode()
    ):
        raise OAuthError(
            "invalid_token",
            "registration requires a valid initial access token",
            401,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def _pattern(allowed: str) -> re.Pattern[str]:
    return re.compile(
        "".join("[^/?#]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", allowed))
    )


def redirect_uri_allowed(uri: str, allowed: list[str]) -> bool:
    if not allowed:
        return True
    return any(
        is_loopback_redirect(uri) if pattern == LOOPBACK else bool(_pattern(pattern).fullmatch(uri))
        for pattern in allowed
    )


def check_redirect_uris(settings: AuthSettings, uris: list[str]) -> None:
    refused = [uri for uri in uris if not redirect_uri_allowed(uri, settings.auth_registration_redirect_uris)]
    if refused:
        raise OAuthError("invalid_redirect_uri", f"this server does not accept redirect URI {refused[0]!r}")
