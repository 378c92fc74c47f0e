"""An MCP resource server serving tools, protected by the auth service."""
