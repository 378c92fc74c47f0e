"""FastMCP servers protected exactly like SDK ones: `KitAuthProvider`, FastMCP's auth provider for the kit.

`FastMCP("Notes", auth=KitAuthProvider(resource_url=..., issuer=..., scopes=[...], tool_scopes={...}))`
(or `protect(fastmcp_server, ...)`, which installs one and returns the kit's FastAPI app) gives a
FastMCP 4.x server the kit's behaviour, not FastMCP's: the same `JWTVerifier` (or
`IntrospectingVerifier`) and verified-token cache, RFC 6750 challenges with `resource_metadata`
and `scope`, per-tool scopes answered with the 403 step-up challenge, RFC 9728 metadata at the
resource's path and at the root (and `/sse`'s own), `/healthz` and `/readyz`, `/metrics` on an
operator port of its own (`metrics_port`), the issuer check at start-up, `Mcp-*` header values
trimmed (RFC 9110 §5.5), and DNS-rebinding protection on the MCP endpoints only (so health probes
by pod address still work).

How: FastMCP wraps its MCP endpoints in its own `RequireAuthMiddleware`, which trusts whatever
authenticated user the app-level middleware put in the ASGI scope. The provider's only middleware
is `KitMiddleware`, which puts the kit's `BearerGuard` in front of those endpoints: a request the
guard admits carries the verified `AccessToken` (so FastMCP's check and its `get_access_token()`
agree with ours); one it refuses never reaches FastMCP. Tested with FastMCP 4.2 (`mcp-auth-kit[fastmcp]`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastmcp import FastMCP
from fastmcp.server.auth import AccessToken, AuthProvider
from mcp.server.auth.provider import TokenVerifier
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE
from mcp_auth_kit.operator_port import OperatorPort
from mcp_auth_kit.protect import allowed_hosts_and_origins, check_tool_names, kit_app, state_for
from mcp_auth_kit.resource_server import (
    MESSAGES_PATH,
    SSE_PATH,
    KitLifespan,
    ProtectedResource,
    health_routes,
    protected_resource,
)
from mcp_auth_kit.rfc7662_introspection import Introspection
from mcp_auth_kit.rfc9110_field_values import TrimmedMcpHeaders
from mcp_auth_kit.rfc9449_dpop_resource import DPoPMode


class KitAuthProvider(AuthProvider):
    """A FastMCP `AuthProvider` that trusts the auth service the way every kit-protected server does."""

    def __init__(
        self,
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
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        sse: bool = True,
        dpop: DPoPMode = "allowed",
        dpop_nonce_secret: str | bytes | None = None,
        dpop_redis_url: str | None = None,
    ) -> None:
        """The arguments mean what they mean for `protect()`; `sse` also guards FastMCP's `/sse` pair."""
        resource = protected_resource(
            resource_url=resource_url,
            issuer=issuer,
            scopes=scopes,
            scopes_supported=scopes_supported,
            tool_scopes=tool_scopes,
            resource_name=resource_name,
            verifier=verifier,
            introspection=introspection,
            internal_url=internal_url,
            dpop=dpop,
            dpop_nonce_secret=dpop_nonce_secret,
            dpop_redis_url=dpop_redis_url,
        )
        operator_port = None if metrics_port is None else OperatorPort(metrics_host, metrics_port)
        self._setup(resource, sse=sse, operator_port=operator_port)

    @classmethod
    def for_resource(cls, resource: ProtectedResource, *, sse: bool) -> KitAuthProvider:
        """The provider `protect()` installs (its app, not the provider, opens the operator port)."""
        provider = cls.__new__(cls)
        provider._setup(resource, sse=sse, operator_port=None)
        return provider

    def _setup(self, resource: ProtectedResource, *, sse: bool, operator_port: OperatorPort | None) -> None:
        parts = urlsplit(resource.resource_url)
        super().__init__(
            base_url=f"{parts.scheme}://{parts.netloc}", required_scopes=list(resource.policy.base)
        )
        self.resource = resource
        self.sse = sse
        self.operator_port = operator_port

    async def verify_token(self, token: str) -> AccessToken | None:
        """FastMCP's hook, answered by the kit's verifier (same checks, same cache)."""
        verified = await self.resource.verifier.verify_token(token)
        return None if verified is None else AccessToken.model_validate(verified.model_dump())

    @property
    def scopes_supported(self) -> list[str]:
        return list(self.resource.scopes_supported)

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        """RFC 9728 metadata and health routes, for the endpoint FastMCP is about to serve."""
        if mcp_path == self.resource.path:
            return self.resource.metadata_routes(sse=self.sse) + health_routes(self.resource.verifier)
        if mcp_path == SSE_PATH and self.sse:
            return self.resource.metadata_routes(sse=True) + health_routes(self.resource.verifier)
        raise ValueError(
            f"KitAuthProvider protects {self.resource.resource_url}, but FastMCP is serving MCP at "
            f"{mcp_path!r}: serve it at {self.resource.path!r} (the resource URL's path, the token audience)"
        )

    def get_middleware(self) -> list[Any]:
        return [Middleware(KitMiddleware, provider=self)]

    def _get_resource_url(self, path: str | None = None) -> AnyHttpUrl | None:
        # Verbatim: AnyHttpUrl would add a trailing slash to the origin, never to a path (NOTES.md).
        url = self.resource.sse_resource_url if path == SSE_PATH else self.resource.resource_url
        return AnyHttpUrl(url)


class KitMiddleware:
    """App-level ASGI middleware: the verifier's lifespan, and on MCP paths trimmed values and the guard."""

    def __init__(self, app: ASGIApp, *, provider: KitAuthProvider) -> None:
        resource = provider.resource
        self.app = app
        self._path = resource.path
        self._sse = provider.sse
        security = _rebinding_protection(resource.resource_url)
        self._lifespan = KitLifespan(app, resource=resource, operator_port=provider.operator_port)
        self._streamable = TrimmedMcpHeaders(resource.guard(RebindingProtection(app, security), sse=False))
        self._sse_guard = resource.guard(RebindingProtection(app, security), sse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self._path:
            await self._streamable(scope, receive, send)
        elif self._sse and (path in (SSE_PATH, MESSAGES_PATH) or path.startswith(MESSAGES_PATH + "/")):
            await self._sse_guard(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class RebindingProtection:
    """The SDK's DNS-rebinding check (Host and Origin must name the resource URL's host), as ASGI."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        self.app = app
        self._check = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await self._check.validate_request(Request(scope), is_post=False)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _rebinding_protection(resource_url: str) -> TransportSecuritySettings:
    hosts, origins = allowed_hosts_and_origins(urlsplit(resource_url))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def protect_fastmcp(
    server: FastMCP[Any],
    resource: ProtectedResource,
    operator_port: OperatorPort | None,
    *,
    auth: bool,
    sse: bool,
    json_response: bool,
    stateless_http: bool,
) -> FastAPI:
    """`protect()` for FastMCP: FastMCP's own transports, the kit's auth, the kit's app around them."""
    if server.auth is not None:
        raise ValueError("configure authorization through protect(), not FastMCP(auth=...)")
    if auth:
        server.auth = KitAuthProvider.for_resource(resource, sse=sse)
    streamable = server.http_app(
        path=resource.path,
        transport="http",
        json_response=json_response,
        stateless_http=stateless_http,
        host_origin_protection=False,  # the kit checks Host and Origin on the MCP endpoints only
    )
    routes: list[BaseRoute] = list(streamable.routes)
    if sse:
        legacy = server.http_app(path=SSE_PATH, transport="sse", host_origin_protection=False)
        # Only the transport's own routes: the streamable app already serves metadata and health, and
        # its lifespan (FastMCP's, reference-counted) serves both transports.
        routes += [
            r for r in legacy.routes if isinstance(r, Route | Mount) and r.path in (SSE_PATH, MESSAGES_PATH)
        ]
    middleware = list(streamable.user_middleware)
    if not auth:
        routes += health_routes(None)
        middleware.append(Middleware(TrimmedMcpHeaders))
    inner_lifespan = streamable.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner_lifespan(app):
            check_tool_names({tool.name for tool in await server.list_tools()}, resource.policy)
            yield

    app = kit_app(routes, middleware, lifespan, operator_port)
    if auth:
        setattr(app.state, STATE_ATTRIBUTE, state_for(resource))
    return app
