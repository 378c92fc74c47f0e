"""The successful token response (RFC 6749 §5.1), shared by every grant."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mcp_auth_server.oauth.errors import NO_STORE
from mcp_auth_server.oauth.rfc9068_access_tokens import IssuedAccessToken


def token_response(
    access: IssuedAccessToken, scopes: list[str], refresh_token: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "scope": " ".join(scopes),
        **extra,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return JSONResponse(body, headers=NO_STORE)
