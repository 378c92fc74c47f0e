"""The `get_user_info` tool: tells the caller who they are signed in as, from their access token alone."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mcp_tools_server.tools.caller import require_access_token


class UserInfo(BaseModel):
    """The signed-in user and the client acting for them, as the access token states (RFC 9068 claims)."""

    login: str | None = Field(description="the user's GitHub login (preferred_username)")
    name: str | None = Field(description="the user's display name")
    email: str | None = Field(description="the user's email address")
    avatar_url: str | None = Field(description="the user's avatar image (picture)")
    subject: str | None = Field(description="the user's stable identifier at the auth service (sub)")
    client_id: str = Field(description="the MCP client the user authorised to call this server")
    scopes: list[str] = Field(description="the scopes the user granted to that client")


def get_user_info() -> UserInfo:
    """Who is calling: the signed-in user's login, name, email and avatar, the MCP client acting for them and
    the scopes that client was granted. Reads the caller's access token only; makes no network calls."""
    token = require_access_token()
    claims: dict[str, Any] = token.claims or {}
    return UserInfo(
        login=_text(claims.get("preferred_username")),
        name=_text(claims.get("name")),
        email=_text(claims.get("email")),
        avatar_url=_text(claims.get("picture")),
        subject=token.subject,
        client_id=token.client_id,
        scopes=sorted(token.scopes),
    )


def _text(claim: object) -> str | None:
    return claim if isinstance(claim, str) and claim else None
