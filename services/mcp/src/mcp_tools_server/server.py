"""The MCP server and its tools, independent of HTTP and authentication (those are `app.py`'s concern)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from mcp_auth_kit.rfc8693_upstream_tokens import UpstreamTokenClient
from mcp_tools_server.github_api import GitHubClient
from mcp_tools_server.tools.calculator import calculate
from mcp_tools_server.tools.github_repos import REQUIRED_SCOPE, make_get_github_repos
from mcp_tools_server.tools.user_info import get_user_info

NAME = "GitHub tools"
BASE_SCOPE = "mcp:tools"
# Scopes a tool needs beyond BASE_SCOPE; the kit answers a call without them with a 403 step-up challenge.
TOOL_SCOPES = {"get_github_repos": [REQUIRED_SCOPE]}


def build_mcp_server(github: GitHubClient, upstream_tokens: UpstreamTokenClient | None) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        NAME,
        instructions="For the signed-in GitHub user: who they are, their repositories, and a calculator.",
    )
    local = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    _add_tool(server, get_user_info, title="Who am I", annotations=local)
    _add_tool(server, calculate, title="Calculator", annotations=local)
    _add_tool(
        server,
        make_get_github_repos(github, upstream_tokens),
        title="My GitHub repositories",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    return server


def _add_tool(
    server: MCPServer[Any], tool: Callable[..., Any], *, title: str, annotations: ToolAnnotations
) -> None:
    # The docstring is the description; the SDK would send its source indentation along.
    description = inspect.cleandoc(tool.__doc__ or "")
    server.add_tool(tool, name=tool.__name__, title=title, description=description, annotations=annotations)
