"""Scope values (RFC 6749 §3.3): parsing, the defaults, and the words the consent page uses for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcp_auth_server.oauth.errors import invalid_scope

# OpenID Connect Core §11: asks for a refresh token. MCP clients add it themselves.
OFFLINE_ACCESS = "offline_access"

DESCRIPTIONS = {
    "mcp:tools": "use this MCP server's tools",
    "github:repos": "list your GitHub repositories",
    OFFLINE_ACCESS: "stay connected when you are away (refresh tokens)",
}


def describe(scope: str, descriptions: Mapping[str, str]) -> str:
    """The words the consent and connected-apps pages use: the resource's own, else the built-in ones."""
    return descriptions.get(scope) or DESCRIPTIONS.get(scope, "access granted by this scope")


def parse_scope(value: str | None) -> list[str]:
    return list(dict.fromkeys((value or "").split()))


def requested_scopes(
    value: str | None, offered: Sequence[str], defaults: Sequence[str], allows_refresh: bool
) -> list[str]:
    """The scopes to grant (RFC 6749 §3.3): unknown ones are an error; none means the defaults."""
    scopes = parse_scope(value) or list(defaults)
    unknown = [s for s in scopes if s not in offered and s != OFFLINE_ACCESS]
    if unknown:
        raise invalid_scope(f"{' '.join(unknown)} is not a scope of this resource")
    if not allows_refresh:
        # A client not registered for refresh_token cannot use offline_access; narrowing is allowed.
        scopes = [s for s in scopes if s != OFFLINE_ACCESS]
    return scopes
