"""JSON answers of the token, revocation and introspection endpoints (RFC 6749 §5), written in one place."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from mcp_auth_server.oauth.errors import NO_STORE, OAuthError


def oauth_error_response(error: OAuthError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers={**NO_STORE, **error.headers})


def no_store_json(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)
