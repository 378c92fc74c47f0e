"""What protecting one MCP server means, whatever framework serves it: the kit's one composition of parts.

`protect()` (for the SDK's `MCPServer`) and `KitAuthProvider` (for FastMCP) both build a
`ProtectedResource` and take from it the same guard, the same metadata documents, the same
readiness answer and the same start-up checks, so a FastMCP server behaves exactly like an SDK one.

Transports: streamable HTTP is served at the resource URL's path; the legacy SSE transport at `/sse`
(+ `/messages/`) of the same origin. RFC 9728 §3.3 makes a client refuse metadata whose `resource`
differs from the URL it used, so `/sse` gets its own document (`resource` = `…/sse`) and its own
challenge pointing there. The auth service knows `…/sse` as an alias of the resource (one consent,
tokens whose audience is the resource URL), so the same token works on both transports.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from mcp.server.auth.provider import TokenVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_auth_kit.dpop_setup import DPoPReplay, dpop_resource
from mcp_auth_kit.guard import BearerGuard
from mcp_auth_kit.operator_port import OperatorPort
from mcp_auth_kit.rfc6750_challenges import validate_scopes
from mcp_auth_kit.rfc7662_introspection import IntrospectingVerifier, Introspection
from mcp_auth_kit.rfc8414_discovery import IssuerMismatch, internal_origin
from mcp_auth_kit.rfc9068_verifier import JWTVerifier
from mcp_auth_kit.rfc9449_dpop_resource import DPoPMode, DPoPResource
from mcp_auth_kit.rfc9728_metadata import metadata_routes, metadata_url, protected_resource_metadata
from mcp_auth_kit.tool_scopes import ScopePolicy

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages"


def validated_resource_url(resource_url: str) -> SplitResult:
    """RFC 8707 §2: an absolute http(s) URL without query or fragment; its path is where MCP is served."""
    parts = urlsplit(resource_url)
    if (
        parts.scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.username
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"resource_url must be an absolute http(s) URL without query or fragment: {resource_url}"
        )
    if parts.path in ("", "/"):
        raise ValueError("resource_url needs a path (e.g. /mcp): it is where the MCP endpoint is served")
    if parts.path.endswith("/"):
        # RFC 8707 compares exactly: `/mcp/` is another resource than `/mcp`, and a trailing slash is
        # almost always a typo that would make every token's audience mismatch.
        raise ValueError(f"resource_url must not end with '/': {resource_url}")
    if parts.path == SSE_PATH:
        raise ValueError(f"resource_url cannot be served at {SSE_PATH}: the legacy SSE transport lives there")
    return parts


@dataclass(frozen=True)
class ProtectedResource:
    """One MCP server as the auth service sees it: its URL, its scopes, and how its tokens are checked."""

    resource_url: str
    issuer: str
    policy: ScopePolicy
    verifier: TokenVerifier
    owns_verifier: bool  # built here, so closed here
    scopes_supported: Sequence[str]
    resource_name: str | None
    dpop: DPoPResource  # RFC 9449: the DPoP policy, its proof verifier and public origin
    dpop_replay: DPoPReplay  # where its proofs' `jti`s are kept (closed with the verifier)

    @property
    def path(self) -> str:
        return urlsplit(self.resource_url).path

    @property
    def sse_resource_url(self) -> str:
        """The legacy SSE endpoint's own resource identifier (an alias of `resource_url` at the auth
        service)."""
        parts = urlsplit(self.resource_url)
        return f"{parts.scheme}://{parts.netloc}{SSE_PATH}"

    def guard(self, app: ASGIApp, *, sse: bool) -> BearerGuard:
        """`app` behind the bearer guard (only streamable HTTP checks `Mcp-*` routing headers)."""
        resource = self.sse_resource_url if sse else self.resource_url
        return BearerGuard(
            app,
            verifier=self.verifier,
            policy=self.policy,
            resource_metadata=metadata_url(resource),
            routing_headers=not sse,
            dpop=self.dpop,
        )

    def metadata_routes(self, *, sse: bool) -> list[Route]:
        """RFC 9728 documents: the resource's at its path and at the root, and `/sse`'s at its own path."""
        routes = metadata_routes(self.resource_url, self._document(self.resource_url), root=True)
        if sse:
            routes += metadata_routes(
                self.sse_resource_url, self._document(self.sse_resource_url), root=False
            )
        return routes

    def _document(self, resource_url: str) -> dict[str, Any]:
        return protected_resource_metadata(
            resource_url=resource_url,
            issuer=self.issuer,
            scopes_supported=self.scopes_supported,
            resource_name=self.resource_name,
            dpop_algorithms=self.dpop.algorithms,
            dpop_required=self.dpop.required,
        )


def protected_resource(
    *,
    resource_url: str,
    issuer: str,
    scopes: Sequence[str] = (),
    scopes_supported: Sequence[str] | None = None,
    tool_scopes: Mapping[str, Sequence[str]] | None = None,
    resource_name: str | None = None,
    verifier: TokenVerifier | None = None,
    introspection: Introspection | None = None,
    internal_url: str | None = None,
    dpop: DPoPMode = "allowed",
    dpop_nonce_secret: str | bytes | None = None,
    dpop_redis_url: str | None = None,
) -> ProtectedResource:
    """Check the arguments `protect()` and `KitAuthProvider` share, and build their common core."""
    if verifier is not None and introspection is not None:
        raise ValueError("pass either verifier or introspection, not both")
    validated_resource_url(resource_url)
    if internal_url is not None:
        internal_origin(internal_url)  # refuse a malformed one now, not at the first token
    policy = ScopePolicy(
        base=tuple(validate_scopes(scopes)),
        tools={tool: tuple(validate_scopes(needed)) for tool, needed in (tool_scopes or {}).items()},
    )
    replay = DPoPReplay(dpop_redis_url)
    return ProtectedResource(
        resource_url=resource_url,
        issuer=issuer,
        policy=policy,
        verifier=verifier or _default_verifier(issuer, resource_url, introspection, internal_url),
        owns_verifier=verifier is None,
        scopes_supported=policy.every_scope() if scopes_supported is None else list(scopes_supported),
        resource_name=resource_name,
        dpop=dpop_resource(resource_url, dpop, replay.cache, dpop_nonce_secret),
        dpop_replay=replay,
    )


def _default_verifier(
    issuer: str, resource_url: str, introspection: Introspection | None, internal_url: str | None
) -> JWTVerifier:
    if introspection is None:
        return JWTVerifier(issuer=issuer, resource_url=resource_url, internal_url=internal_url)
    return IntrospectingVerifier(
        issuer=issuer,
        resource_url=resource_url,
        internal_url=internal_url,
        client_id=introspection.client_id,
        client_secret=introspection.client_secret,
        private_key=introspection.private_key,
        cache_ttl=introspection.cache_ttl,
    )


class KitLifespan:
    """ASGI middleware owning the verifier's life and the operator port's, whatever the framework.

    Start-up opens the operator port (`/metrics`), if any, and checks the issuer; shutdown closes the
    verifier and the port (a failed start-up, the port). A taken operator port, or an issuer whose
    metadata names another issuer, stops start-up with one line (the address; expected, got, URL):
    `lifespan.startup.failed` carries it, and uvicorn logs it and exits. An unreachable issuer does not
    stop start-up (the auth service may simply start later); its keys are fetched in the background.
    Living in the ASGI lifespan, it works for any framework's app, whatever its own lifespan does.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resource: ProtectedResource | None = None,
        operator_port: OperatorPort | None = None,
    ) -> None:
        self.app = app
        self._resource = resource
        self._operator_port = operator_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "lifespan.startup":
            problem = await self._start()
            if problem is not None:
                self._close_operator_port()
                await send({"type": "lifespan.startup.failed", "message": problem})
                return
        pending: deque[Message] = deque([first])

        async def replaying_receive() -> Message:
            return pending.popleft() if pending else await receive()

        async def closing_send(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown"):
                if self._resource is not None and self._resource.owns_verifier:
                    await _close(self._resource.verifier)
                if self._resource is not None:
                    await self._resource.dpop_replay.aclose()
                self._close_operator_port()
            elif message["type"] == "lifespan.startup.failed":
                self._close_operator_port()
            await send(message)

        await self.app(scope, replaying_receive, closing_send)

    async def _start(self) -> str | None:
        """Open the operator port and check the issuer; the one line saying why start-up must stop, if so."""
        if self._operator_port is not None:
            try:
                self._operator_port.start()
            except OSError as exc:  # its strerror names the address and the cause
                return exc.strerror or str(exc)
        verifier = None if self._resource is None else self._resource.verifier
        if isinstance(verifier, JWTVerifier):
            try:
                await verifier.jwks.start()
            except IssuerMismatch as exc:
                return str(exc)
        return None

    def _close_operator_port(self) -> None:
        if self._operator_port is not None:
            self._operator_port.stop()


async def _close(verifier: TokenVerifier) -> None:
    if isinstance(verifier, JWTVerifier):
        await verifier.aclose()


def health_routes(verifier: TokenVerifier | None) -> list[Route]:
    """`/healthz` (the process answers) and `/readyz` (it can check tokens; always, without auth)."""
    return [Route("/healthz", endpoint=_healthz), Route("/readyz", endpoint=readiness(verifier))]


async def _healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def readiness(verifier: TokenVerifier | None) -> Callable[[Request], Awaitable[JSONResponse]]:
    """`/readyz`: ready once the issuer's signing keys are loaded; otherwise 503 saying why."""

    async def readyz(_: Request) -> JSONResponse:
        if not isinstance(verifier, JWTVerifier) or await verifier.jwks.ensure_loaded():
            return JSONResponse({"status": "ready"})
        reason = verifier.jwks.problem or f"the signing keys of {verifier.issuer} are not loaded yet"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    return readyz
