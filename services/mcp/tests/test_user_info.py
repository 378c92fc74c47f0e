"""`get_user_info` reads only the verified token the kit put in the request context."""

from __future__ import annotations

import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError

from mcp_tools_server.tools.user_info import UserInfo, get_user_info


def test_absent_or_empty_profile_claims_are_null() -> None:
    token = AccessToken(
        token="t",
        client_id="cursor",
        scopes=["mcp:tools", "github:repos"],
        subject="user-9",
        claims={"preferred_username": "hubot", "email": "", "picture": 42},
    )
    context = auth_context_var.set(AuthenticatedUser(token))
    try:
        info = get_user_info()
    finally:
        auth_context_var.reset(context)
    assert info == UserInfo(
        login="hubot",
        name=None,
        email=None,
        avatar_url=None,
        subject="user-9",
        client_id="cursor",
        scopes=["github:repos", "mcp:tools"],
    )


def test_without_a_token_it_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match=r"runs without authentication \(MCP_AUTH=off\)"):
        get_user_info()
