"""ASGI middleware that admits only requests whose bearer token is valid and carries every scope needed.

It replaces the SDK's `RequireAuthMiddleware`/`BearerAuthBackend` pair: challenges follow RFC 6750 §3
exactly (see `rfc6750_challenges`), and per-tool scopes are enforced at the HTTP level so clients get
the 403 step-up challenge they know how to act on, not a JSON-RPC error.
"""

from __future__ import annotations

import logging
from collections import deque

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import TokenVerifier
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_auth_kit.availability import VerificationUnavailable, unavailable_response
from mcp_auth_kit.rfc6750_challenges import ErrorCode, MultipleTokens, bearer_token, challenge_response
from mcp_auth_kit.tool_scopes import (
    ScopePolicy,
    tools_called_in_body,
    tools_named_in_headers,
    uses_routing_headers,
)

logger = logging.getLogger(__name__)


class BearerGuard:
    """Wraps one MCP endpoint (streamable HTTP, or the legacy SSE pair)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        policy: ScopePolicy,
        resource_metadata: str,
        routing_headers: bool,
        max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
    ) -> None:
        """`routing_headers`: the endpoint is streamable HTTP, whose SDK transport checks `Mcp-*` headers."""
        self.app = app
        self._verifier = verifier
        self._policy = policy
        self._resource_metadata = resource_metadata
        self._routing_headers = routing_headers
        self._max_body_size = max_body_size
        self._all_tools = list(policy.tools)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        from_headers = self._routing_headers and uses_routing_headers(headers)
        tools = tools_named_in_headers(headers) if from_headers else []
        try:
            token = bearer_token(headers)
        except MultipleTokens:
            await self._refuse(scope, receive, send, tools, "invalid_request")
            return
        if token is None:
            # RFC 6750 §3.1: no authentication information presented, so no error code.
            await self._refuse(scope, receive, send, tools, None)
            return
        try:
            access_token = await self._verifier.verify_token(token)
        except VerificationUnavailable as exc:
            # Fail closed, but not with 401: the token may be fine, the auth service could not say.
            logger.warning("token check unavailable: %s", exc)
            await unavailable_response()(scope, receive, send)
            return
        if access_token is None:
            await self._refuse(scope, receive, send, tools, "invalid_token")
            return
        if not from_headers and self._all_tools and scope["method"] == "POST":
            body, receive = await _buffer_body(receive, self._max_body_size)
            if body is None:
                await Response("Request body too large", status_code=413)(scope, receive, send)
                return
            tools = tools_called_in_body(body, self._all_tools)
        granted = set(access_token.scopes)
        if not granted.issuperset(self._policy.required(tools)):
            # RFC 6750 §3.1 insufficient_scope; MCP step-up: `scope` lists everything needed, not the gap.
            await self._refuse(scope, receive, send, tools, "insufficient_scope")
            return
        user = AuthenticatedUser(access_token)
        # The SDK reads `scope["user"]` for session ownership and tools read `auth_context_var`.
        scope["user"] = user
        scope["auth"] = AuthCredentials(access_token.scopes)
        context = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(context)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, tools: list[str], error: ErrorCode | None
    ) -> None:
        response = challenge_response(
            resource_metadata=self._resource_metadata, scopes=self._policy.required(tools), error=error
        )
        await response(scope, receive, send)


async def _buffer_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the whole request body (None past `limit`) and a `receive` that replays it to the app."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            replay: deque[Message] = deque([message])
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        if not message.get("more_body", False):
            replay = deque()
            break
    body = b"".join(chunks)
    replay.appendleft({"type": "http.request", "body": body, "more_body": False})

    async def replaying_receive() -> Message:
        return replay.popleft() if replay else await receive()

    return body, replaying_receive
