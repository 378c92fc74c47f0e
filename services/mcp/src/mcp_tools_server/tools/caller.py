"""Who is calling a tool: the verified access token the kit's middleware put in the request context."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError


def require_access_token() -> AccessToken:
    """The caller's token, or a tool error saying why there is none (the server runs with MCP_AUTH=off)."""
    token = get_access_token()
    if token is None:
        raise ToolError(
            "This tool needs a signed-in user, but this server runs without authentication (MCP_AUTH=off)."
        )
    return token
