"""A third-party MCP server that only the auth service's users can call (the kit documentation's example)."""

import os

from mcp.server.mcpserver import MCPServer

from mcp_auth_kit import protect

mcp = MCPServer("Notes")


@mcp.tool()
def add_note(text: str) -> str:
    """Save a note."""
    return f"saved: {text}"


app = protect(
    mcp,
    resource_url=os.environ.get("MCP_RESOURCE_URL", "http://127.0.0.1:9200/mcp"),  # the token audience
    issuer=os.environ.get("MCP_AUTH_ISSUER", "http://127.0.0.1:9000"),  # the auth service
    scopes=["notes:read"],  # every call needs these
    tool_scopes={"add_note": ["notes:write"]},  # add_note also needs these (403 step-up)
    resource_name="Notes",
)
# uvicorn notes_server:app --port 9200
