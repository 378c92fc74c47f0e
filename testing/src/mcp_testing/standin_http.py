"""What every stand-in provider does alike over HTTP: the request log, failure switches and PKCE checks.

Shared by the GitHub and OIDC stand-ins so both misbehave the same way and log the same shape.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

FailureMode = Literal["5xx", "timeout", "junk", "rate_limit"]
_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; credentials reduced to their scheme


def logged(request: Request) -> LoggedRequest:
    headers = {
        # Keep the scheme (Bearer, token, Basic) so tests can see how a client authenticated.
        name: value.partition(" ")[0] + " <redacted>" if name in _SECRET_HEADERS else value
        for name, value in request.headers.items()
    }
    return LoggedRequest(request.method, request.url.path, dict(request.query_params), headers)


async def misbehave(mode: FailureMode, timeout_seconds: float) -> Response:
    """A 502 page, a hang longer than any client waits, a 200 with truncated JSON, or GitHub's answer once
    a token's hourly quota is spent (403 with `x-ratelimit-remaining: 0`: a wait, not a refusal)."""
    if mode == "rate_limit":
        return JSONResponse(
            {"message": "API rate limit exceeded for user ID 1."},
            status_code=403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 600)},
        )
    if mode == "timeout":
        await asyncio.sleep(timeout_seconds)
        return Response(status_code=504)
    if mode == "junk":
        return Response('{"access_token": "gho_', media_type="application/json")
    return HTMLResponse("<h1>Unicorn!</h1><p>This page is taking too long to load.</p>", status_code=502)


def pkce_matches(challenge: str, verifier: str) -> bool:
    """RFC 7636 §4.6 with S256."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return secrets.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), challenge)


class RecordsAndFails(Protocol):
    """The part of a stand-in's state the middleware below reads and writes."""

    requests: list[LoggedRequest]
    timeout_seconds: float

    @property
    def failures(self) -> Mapping[Any, FailureMode]: ...


class RecordAndMisbehave:
    """Logs each request of a route group, then answers with the failure switched on for that group, if any.

    `group_of(path)` names a path's route group (None: neither logged nor failed); `state_of(request)`
    is the state the app serves now (tests swap it whole on reset).
    """

    def __init__(
        self,
        app: ASGIApp,
        group_of: Callable[[str], str | None],
        state_of: Callable[[Request], RecordsAndFails],
    ) -> None:
        self._app = app
        self._group_of = group_of
        self._state_of = state_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        group = self._group_of(scope.get("path", "")) if scope["type"] == "http" else None
        if group is None:
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive)
        state = self._state_of(request)
        state.requests.append(logged(request))
        mode = state.failures.get(group)
        if mode is None:
            await self._app(scope, receive, send)
        else:
            await (await misbehave(mode, state.timeout_seconds))(scope, receive, send)


class OneTimeCode(Protocol):
    client_id: str
    used: bool
    expires_at: float  # time.monotonic()


Code = TypeVar("Code", bound=OneTimeCode)


def consume(codes: Mapping[str, Code], value: str, client_id: str) -> Code | None:
    """The code if it is live and the client's; any presentation uses it up (RFC 6749 §4.1.2)."""
    code = codes.get(value)
    if code is None or code.used or code.client_id != client_id:
        return None
    code.used = True
    return code if time.monotonic() < code.expires_at else None
