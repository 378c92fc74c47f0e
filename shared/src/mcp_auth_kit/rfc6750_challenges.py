"""Builds the RFC 6750 §3 `WWW-Authenticate` challenges MCP clients act on, and reads the bearer token.

MCP clients find the authorization server through `resource_metadata` (RFC 9728 §5.1) and choose the
scopes to request from `scope`, so every challenge carries both. The SDK's own middleware omits
`scope` and sends an `error` even when no token was presented; this module replaces it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from starlette.datastructures import Headers
from starlette.responses import Response

ErrorCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]
_STATUS: dict[ErrorCode | None, int] = {
    None: 401,
    "invalid_request": 400,
    "invalid_token": 401,
    "insufficient_scope": 403,
}
_DESCRIPTIONS: dict[ErrorCode | None, str] = {
    None: "Authentication required",
    "invalid_request": "Send exactly one bearer token, in the Authorization header",
    "invalid_token": "The access token is invalid or expired",
    "insufficient_scope": "The access token lacks scopes this operation needs",
}
# RFC 6750 §2.1 b64token, after the "Bearer" auth-scheme (matched case-insensitively, RFC 9110 §11.1).
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *", re.ASCII)
# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\', so it is safe inside a quoted-string.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+", re.ASCII)


class MultipleTokens(Exception):
    """RFC 6750 §3.1 invalid_request: more than one Authorization header."""


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    """Scopes as given, after checking each is an RFC 6749 §3.3 scope-token."""
    checked = list(scopes)
    for scope in checked:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"not an RFC 6749 scope-token: {scope!r}")
    return checked


def bearer_token(headers: Headers) -> str | None:
    """The RFC 6750 §2.1 bearer token of a request, or None when it presents none."""
    values = headers.getlist("authorization")
    if len(values) > 1:
        raise MultipleTokens
    if not values:
        return None
    match = _BEARER.fullmatch(values[0])
    return match.group(1) if match else None


def www_authenticate(
    *,
    resource_metadata: str,
    scopes: Sequence[str] = (),
    error: ErrorCode | None = None,
    error_description: str | None = None,
) -> str:
    """An RFC 6750 §3 `Bearer` challenge; with no token presented, pass no `error` (RFC 6750 §3.1)."""
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
        params.append(("error_description", error_description or description(error)))
    params.append(("resource_metadata", resource_metadata))  # RFC 9728 §5.1
    if scopes:
        params.append(("scope", " ".join(scopes)))  # RFC 6750 §3: the scopes the request needs
    return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params)


def status_code(error: ErrorCode | None) -> int:
    """RFC 6750 §3.1: 400 invalid_request, 401 invalid_token (or no token), 403 insufficient_scope."""
    return _STATUS[error]


def description(error: ErrorCode | None) -> str:
    return _DESCRIPTIONS[error]


def refusal_response(
    status: int,
    error: str | None,
    error_description: str,
    challenges: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A refusal with its `WWW-Authenticate` challenges and a JSON body (`error` only when there is one)."""
    body: dict[str, str] = {"error_description": error_description}
    if error is not None:
        body = {"error": error, **body}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"WWW-Authenticate": challenges, "Cache-Control": "no-store", **(headers or {})},
    )
