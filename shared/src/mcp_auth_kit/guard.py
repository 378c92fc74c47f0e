"""ASGI middleware that admits only requests whose access token is valid and carries every scope needed.

It replaces the SDK's `RequireAuthMiddleware`/`BearerAuthBackend` pair: challenges follow RFC 6750 §3
exactly (see `rfc6750_challenges`), DPoP-bound tokens need their proof (RFC 9449, see
`rfc9449_dpop_resource`), and per-tool scopes are enforced at the HTTP level so clients get the 403
step-up challenge they know how to act on, not a JSON-RPC error.
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
from mcp_auth_kit.rfc6750_challenges import refusal_response
from mcp_auth_kit.rfc9449_dpop_resource import (
    DPoPResource,
    Refusal,
    Refused,
    authenticate,
    path_as_sent,
    refusal,
    www_authenticate_for,
)
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
        dpop: DPoPResource | None = None,
        max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
    ) -> None:
        """`routing_headers`: the endpoint is streamable HTTP, whose SDK transport checks `Mcp-*` headers.
        `dpop`: the server's DPoP policy (None: bearer tokens only)."""
        self.app = app
        self._verifier = verifier
        self._dpop = dpop
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
            access_token, presented = await authenticate(
                headers=headers,
                method=scope["method"],
                path=path_as_sent(scope),
                verifier=self._verifier,
                dpop=self._dpop,
            )
        except Refused as refused:
            await self._refuse(scope, receive, send, tools, refused.refusal)
            return
        except VerificationUnavailable as exc:
            # Fail closed, but not with 401: the token may be fine, the auth service could not say.
            logger.warning("token check unavailable: %s", exc)
            await unavailable_response()(scope, receive, send)
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
            insufficient = refusal(self._dpop, "insufficient_scope", presented.scheme)
            await self._refuse(scope, receive, send, tools, insufficient)
            return
        if presented.scheme == "DPoP" and self._dpop is not None:
            send = _with_nonce(send, self._dpop.nonce())  # RFC 9449 §8.2: the next nonce, with the answer
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
        self, scope: Scope, receive: Receive, send: Send, tools: list[str], refused: Refusal
    ) -> None:
        challenges = www_authenticate_for(
            refused,
            self._dpop,
            resource_metadata=self._resource_metadata,
            scopes=self._policy.required(tools),
        )
        nonce = {"DPoP-Nonce": refused.nonce} if refused.nonce else None
        response = refusal_response(refused.status, refused.error, refused.describe, challenges, nonce)
        await response(scope, receive, send)


def _with_nonce(send: Send, nonce: str | None) -> Send:
    if nonce is None:
        return send

    async def send_with_nonce(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"dpop-nonce", nonce.encode("ascii"))]
        await send(message)

    return send_with_nonce


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
