"""The tools this MCP server offers; `app.py` registers them on the server."""
