"""HTTP endpoints, one module per endpoint (in the style of the mcp SDK's auth handlers)."""
