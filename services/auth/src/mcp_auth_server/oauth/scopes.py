"""Scope requests at /authorize: a subset of the resource's scopes plus `offline_access`."""

from __future__ import annotations

from collections.abc import Mapping

from mcp_auth_server.oauth.errors import invalid_scope
from mcp_auth_server.store.resources import OFFLINE_ACCESS, RegisteredResource

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


def requested_scopes(value: str | None, resource: RegisteredResource, allows_refresh: bool) -> list[str]:
    """The scopes to grant (RFC 6749 §3.3): unknown ones are an error; none means the defaults."""
    scopes = parse_scope(value) or list(resource.default_scopes)
    unknown = [s for s in scopes if s not in resource.scopes and s != OFFLINE_ACCESS]
    if unknown:
        raise invalid_scope(f"{' '.join(unknown)} is not a scope of {resource.resource}")
    if not allows_refresh:
        # A client not registered for refresh_token cannot use offline_access; narrowing is allowed.
        scopes = [s for s in scopes if s != OFFLINE_ACCESS]
    return scopes
