"""`protect(server, ...)`: one call turns an MCP server into a FastAPI app guarded by the auth service.

The composition root of the kit for the official SDK's `MCPServer` (FastMCP servers go through
`fastmcp_auth.KitAuthProvider`, which builds the same parts): it serves the SDK's streamable HTTP
transport at the resource URL's path (and the legacy SSE pair), behind `BearerGuard`, with `Mcp-*`
header values trimmed (RFC 9110 §5.5); publishes RFC 9728 metadata; adds health and readiness, and
metrics on a port of their own; and runs the SDK's session manager in its own lifespan, because a
mounted app's lifespan never runs.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from fastapi import FastAPI
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE, ResourceAuth
from mcp_auth_kit.observability import ObservabilityMiddleware
from mcp_auth_kit.operator_port import OperatorPort
from mcp_auth_kit.resource_server import (
    DEFAULT_PORTS,
    MESSAGES_PATH,
    SSE_PATH,
    KitLifespan,
    ProtectedResource,
    health_routes,
    protected_resource,
    validated_resource_url,
)
from mcp_auth_kit.rfc7662_introspection import Introspection
from mcp_auth_kit.rfc9110_field_values import TrimmedMcpHeaders
from mcp_auth_kit.rfc9449_dpop_resource import DPoPMode
from mcp_auth_kit.rfc9728_metadata import metadata_url
from mcp_auth_kit.tool_scopes import ScopePolicy

if TYPE_CHECKING:
    from fastmcp import FastMCP

ACCEPTED = "an mcp.server.mcpserver.MCPServer (the official MCP SDK) or a fastmcp.FastMCP (FastMCP 4.x)"


def protect(
    mcp_server: MCPServer[Any] | FastMCP[Any],
    *,
    resource_url: str,
    issuer: str,
    scopes: Sequence[str] = (),
    scopes_supported: Sequence[str] | None = None,
    tool_scopes: Mapping[str, Sequence[str]] | None = None,
    resource_name: str | None = None,
    auth: bool = True,
    sse: bool = True,
    json_response: bool = True,
    stateless_http: bool = True,
    verifier: TokenVerifier | None = None,
    introspection: Introspection | None = None,
    internal_url: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    dpop: DPoPMode = "allowed",
    dpop_nonce_secret: str | bytes | None = None,
    dpop_redis_url: str | None = None,
) -> FastAPI:
    """A FastAPI app serving `mcp_server` at `resource_url`, accepting only tokens `issuer` made for it.

    `mcp_server` is the official SDK's `MCPServer` or a FastMCP 4.x `FastMCP`; anything else is a
    `TypeError`. `scopes` are needed by every request (and advertised in 401 challenges);
    `tool_scopes` adds scopes per tool (a call without them gets the 403 step-up challenge).
    `scopes_supported` defaults to all of them. `verifier` replaces the default `JWTVerifier` (it
    must check the audience and expiry itself). `introspection` (this server's own client
    credentials) also asks the auth service whether each token is still active, cached briefly
    (`IntrospectingVerifier`), so revocation bites before expiry. With `auth=False` the same tools
    are served to anyone. `internal_url` (e.g. `http://mcp-auth-server:9000`) is where the auth
    service is reached when that is not its public issuer URL; `iss` is still checked against
    `issuer` exactly. `/metrics` is served on `metrics_host:metrics_port` only, never on the public
    port (none if `metrics_port` is None).

    DPoP (RFC 9449): `dpop="allowed"` takes DPoP-bound tokens with their proofs beside bearer tokens;
    `"required"` takes DPoP-bound tokens only. `dpop_nonce_secret` (shared by the replicas) turns on
    server nonces; `dpop_redis_url` shares the proofs' replay memory between replicas (in memory
    otherwise: one process).
    """
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
    transports = dict(sse=sse, json_response=json_response, stateless_http=stateless_http)
    if isinstance(mcp_server, MCPServer):
        return _protect_sdk_server(mcp_server, resource, operator_port, auth=auth, **transports)
    fastmcp = sys.modules.get("fastmcp")  # never imported here: FastMCP is an optional dependency
    if fastmcp is not None and isinstance(mcp_server, fastmcp.FastMCP):
        from mcp_auth_kit.fastmcp_auth import protect_fastmcp

        return protect_fastmcp(mcp_server, resource, operator_port, auth=auth, **transports)
    kind = type(mcp_server)
    raise TypeError(f"protect() accepts {ACCEPTED}; got {kind.__module__}.{kind.__qualname__}")


def kit_app(
    routes: list[BaseRoute],
    middleware: Sequence[Middleware],
    lifespan: Any,
    operator_port: OperatorPort | None,
) -> FastAPI:
    """The FastAPI app every `protect()` returns: its routes, the observability middleware, and the
    operator port (`/metrics`, never on the public port) open while the app runs."""
    if operator_port is not None:
        middleware = [Middleware(KitLifespan, operator_port=operator_port), *middleware]
    return FastAPI(
        routes=routes,
        middleware=[Middleware(ObservabilityMiddleware), *middleware],
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )


def state_for(resource: ProtectedResource) -> ResourceAuth:
    """What `require_token()` reads from `app.state`: the same verifier, DPoP policy and challenge URL."""
    return ResourceAuth(
        verifier=resource.verifier,
        resource_metadata=metadata_url(resource.resource_url),
        dpop=resource.dpop,
    )


def _protect_sdk_server(
    mcp_server: MCPServer[Any],
    resource: ProtectedResource,
    operator_port: OperatorPort | None,
    *,
    auth: bool,
    sse: bool,
    json_response: bool,
    stateless_http: bool,
) -> FastAPI:
    if mcp_server.settings.auth is not None:
        raise ValueError("configure authorization through protect(), not MCPServer(auth=...)")
    parts = validated_resource_url(resource.resource_url)
    security = _transport_security(parts)
    mcp_server.streamable_http_app(  # builds mcp_server.session_manager with these settings
        streamable_http_path=parts.path,
        json_response=json_response,
        stateless_http=stateless_http,
        transport_security=security,
    )
    streamable: ASGIApp = StreamableHTTPASGIApp(mcp_server.session_manager)
    sse_routes = _sse_routes(mcp_server, security) if sse else []

    routes: list[BaseRoute] = []
    middleware: list[Middleware] = []
    if auth:
        routes.append(Route(parts.path, endpoint=TrimmedMcpHeaders(resource.guard(streamable, sse=False))))
        routes += [_rewrapped(route, lambda app: resource.guard(app, sse=True)) for route in sse_routes]
        routes += resource.metadata_routes(sse=sse)
        routes += health_routes(resource.verifier)
        middleware.append(Middleware(KitLifespan, resource=resource))
    else:
        routes.append(Route(parts.path, endpoint=TrimmedMcpHeaders(streamable)))
        routes += sse_routes
        routes += health_routes(None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _check_tool_names(mcp_server, resource.policy)
        async with mcp_server.session_manager.run():
            yield

    app = kit_app(routes, middleware, lifespan, operator_port)
    if auth:
        setattr(app.state, STATE_ATTRIBUTE, state_for(resource))
    return app


def _transport_security(parts: SplitResult) -> TransportSecuritySettings:
    """DNS-rebinding protection: accept only the resource URL's own host (with and without its port)."""
    hosts, origins = allowed_hosts_and_origins(parts)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def allowed_hosts_and_origins(parts: SplitResult) -> tuple[list[str], list[str]]:
    """The `Host` values and browser origins that name the resource URL's host (with and without port)."""
    hostname = parts.hostname or ""
    host = f"[{hostname}]" if ":" in hostname else hostname
    default_port = DEFAULT_PORTS[parts.scheme]
    port = parts.port or default_port
    origins = [f"{parts.scheme}://{host}:{port}"] + (
        [f"{parts.scheme}://{host}"] if port == default_port else []
    )
    return [f"{host}:{port}", host], origins


def _sse_routes(mcp_server: MCPServer[Any], security: TransportSecuritySettings) -> list[Route | Mount]:
    """The SDK's legacy `/sse` and `/messages/` routes (its app's other routes are not ours to serve)."""
    routes = mcp_server.sse_app(transport_security=security).routes
    return [
        route
        for route in routes
        if isinstance(route, Route | Mount) and route.path in (SSE_PATH, MESSAGES_PATH)
    ]


def _rewrapped(route: Route | Mount, wrap: Callable[[ASGIApp], ASGIApp]) -> Route | Mount:
    """The same route with its ASGI app wrapped (an app object, so Starlette calls it as raw ASGI)."""
    if isinstance(route, Mount):
        return Mount(route.path, app=wrap(route.app))
    return Route(route.path, endpoint=wrap(route.app), methods=route.methods)


async def _check_tool_names(mcp_server: MCPServer[Any], policy: ScopePolicy) -> None:
    """Fail at start-up on a tool_scopes entry naming no tool: a typo would silently drop a scope check."""
    check_tool_names({tool.name for tool in await mcp_server.list_tools()}, policy)


def check_tool_names(known: set[str], policy: ScopePolicy) -> None:
    unknown = sorted(set(policy.tools) - known)
    if unknown:
        raise RuntimeError(f"tool_scopes names unknown tools: {', '.join(unknown)}")
