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
# RFC 9110 §11.4 credentials: an auth-scheme, then (after 1*SP) its parameters; split at the first
# whitespace so that `Bearer\tabc` is read as a malformed Bearer header, not as another scheme.
_CREDENTIALS = re.compile(r"(\S+)(.*)", re.DOTALL)
# RFC 6750 §2.1 / RFC 9449 §7.1: 1*SP, then a b64token (token68), and nothing after it.
_TOKEN68 = re.compile(r" +([A-Za-z0-9\-._~+/]+=*) *", re.ASCII)
# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\', so it is safe inside a quoted-string.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+", re.ASCII)


class MultipleTokens(Exception):
    """RFC 6750 §3.1 invalid_request: more than one Authorization header."""


class MalformedCredentials(Exception):
    """RFC 6750 §3.1 invalid_request: an Authorization header of a scheme we take, not `scheme 1*SP token68`
    (`Bearer` alone, `Bearer a.b=.c`, a tab or a second word after the token, characters outside token68)."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"malformed {scheme} credentials")
        self.scheme = scheme
        self.description = f"Malformed Authorization header: send {scheme}, a space and one token68"


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    """Scopes as given, after checking each is an RFC 6749 §3.3 scope-token."""
    checked = list(scopes)
    for scope in checked:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"not an RFC 6749 scope-token: {scope!r}")
    return checked


def authorization(headers: Headers) -> tuple[str, str] | None:
    """The one Authorization header as (auth-scheme in lower case, the rest); None without one.

    More than one is `MultipleTokens`. Schemes are case-insensitive (RFC 9110 §11.1).
    """
    values = headers.getlist("authorization")
    if len(values) > 1:
        raise MultipleTokens
    if not values:
        return None
    match = _CREDENTIALS.fullmatch(values[0].strip(" \t"))
    return (match.group(1).lower(), match.group(2)) if match else ("", "")


def token68(scheme: str, rest: str) -> str:
    """The token after `scheme` (`rest`: what follows the scheme name), or `MalformedCredentials`."""
    match = _TOKEN68.fullmatch(rest)
    if match is None:
        raise MalformedCredentials(scheme)
    return match.group(1)


def bearer_token(headers: Headers) -> str | None:
    """The RFC 6750 §2.1 bearer token of a request; None when it presents none (no header, or another
    scheme: RFC 6750 §3.1 treats an unsupported method as no authentication). A malformed Bearer header
    is `MalformedCredentials`, answered 400 invalid_request."""
    presented = authorization(headers)
    if presented is None or presented[0] != "bearer":
        return None
    return token68("Bearer", presented[1])


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
