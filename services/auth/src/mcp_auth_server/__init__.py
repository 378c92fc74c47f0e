"""OAuth 2.1 authorization server for fleets of MCP servers."""
