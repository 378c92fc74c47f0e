"""`protect(mcp_server, ...)`: one call turns an `MCPServer` into a FastAPI app guarded by the auth service.

The composition root of the kit: it serves the SDK's streamable HTTP transport at the resource URL's
path (and the legacy SSE pair), behind `BearerGuard`; publishes RFC 9728 metadata; adds health and
readiness, and metrics on a port of their own; and runs the SDK's session manager in its own
lifespan, because a mounted app's lifespan never runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import SplitResult, urlsplit

from fastapi import FastAPI
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE, ResourceAuth
from mcp_auth_kit.guard import BearerGuard
from mcp_auth_kit.observability import ObservabilityMiddleware
from mcp_auth_kit.operator_port import OperatorPort
from mcp_auth_kit.rfc6750_challenges import validate_scopes
from mcp_auth_kit.rfc7662_introspection import IntrospectingVerifier, Introspection
from mcp_auth_kit.rfc8414_discovery import internal_origin
from mcp_auth_kit.rfc9068_verifier import JWTVerifier
from mcp_auth_kit.rfc9728_metadata import metadata_routes, metadata_url, protected_resource_metadata
from mcp_auth_kit.tool_scopes import ScopePolicy

_DEFAULT_PORTS = {"http": 80, "https": 443}


def protect(
    mcp_server: MCPServer,
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
) -> FastAPI:
    """A FastAPI app serving `mcp_server` at `resource_url`, accepting only tokens `issuer` made for it.

    `scopes` are needed by every request (and advertised in 401 challenges); `tool_scopes` adds
    scopes per tool (a call without them gets the 403 step-up challenge). `scopes_supported`
    defaults to all of them. `verifier` replaces the default `JWTVerifier` (it must check the
    audience and expiry itself). `introspection` (this server's own client credentials) also asks the
    auth service whether each token is still active, cached briefly (`IntrospectingVerifier`), so
    revocation bites before expiry. With `auth=False` the same tools are served to anyone.
    `internal_url` (e.g. `http://mcp-auth-server:9000`) is where the auth service is reached when
    that is not its public issuer URL; `iss` is still checked against `issuer` exactly.
    `/metrics` is served on `metrics_host:metrics_port` only, never on the public port (none if
    `metrics_port` is None).
    """
    if verifier is not None and introspection is not None:
        raise ValueError("pass either verifier or introspection, not both")
    if mcp_server.settings.auth is not None:
        raise ValueError("configure authorization through protect(), not MCPServer(auth=...)")
    parts = _validated_resource_url(resource_url)
    if internal_url is not None:
        internal_origin(internal_url)  # refuse a malformed one now, not at the first token
    policy = ScopePolicy(
        base=tuple(validate_scopes(scopes)),
        tools={tool: tuple(validate_scopes(needed)) for tool, needed in (tool_scopes or {}).items()},
    )
    security = _transport_security(parts)
    mcp_server.streamable_http_app(  # builds mcp_server.session_manager with these settings
        streamable_http_path=parts.path,
        json_response=json_response,
        stateless_http=stateless_http,
        transport_security=security,
    )
    streamable: ASGIApp = StreamableHTTPASGIApp(mcp_server.session_manager)
    sse_routes = _sse_routes(mcp_server, security) if sse else []

    routes: list[BaseRoute] = [Route("/healthz", endpoint=_healthz)]
    settings: ResourceAuth | None = None
    if auth:
        settings = ResourceAuth(
            verifier=verifier or _default_verifier(issuer, resource_url, introspection, internal_url),
            resource_metadata=metadata_url(resource_url),
        )
        guard = partial(
            BearerGuard,
            verifier=settings.verifier,
            policy=policy,
            resource_metadata=settings.resource_metadata,
        )
        # Only the streamable HTTP transport checks Mcp-Method/Mcp-Name against the body; SSE is body-only.
        routes.append(Route(parts.path, endpoint=guard(streamable, routing_headers=True)))
        routes += [_rewrapped(route, partial(guard, routing_headers=False)) for route in sse_routes]
        document = protected_resource_metadata(
            resource_url=resource_url,
            issuer=issuer,
            scopes_supported=policy.every_scope() if scopes_supported is None else scopes_supported,
            resource_name=resource_name,
        )
        routes += metadata_routes(resource_url, document)
    else:
        routes.append(Route(parts.path, endpoint=streamable))
        routes += sse_routes
    routes.append(Route("/readyz", endpoint=_readyz(settings)))

    operator_port = OperatorPort(metrics_host, metrics_port) if metrics_port is not None else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _check_tool_names(mcp_server, policy)
        if operator_port is not None:
            operator_port.start()
        async with mcp_server.session_manager.run():
            if settings is not None and isinstance(settings.verifier, JWTVerifier):
                await settings.verifier.jwks.ensure_loaded()  # warm up; failure only delays readiness
            try:
                yield
            finally:
                if settings is not None and verifier is None and isinstance(settings.verifier, JWTVerifier):
                    await settings.verifier.aclose()
                if operator_port is not None:
                    operator_port.stop()

    app = FastAPI(lifespan=lifespan, routes=routes, openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(ObservabilityMiddleware)
    if settings is not None:
        setattr(app.state, STATE_ATTRIBUTE, settings)
    return app


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
        cache_ttl=introspection.cache_ttl,
    )


def _validated_resource_url(resource_url: str) -> SplitResult:
    parts = urlsplit(resource_url)
    # RFC 8707 §2: an absolute http(s) URL without query or fragment; its path is where MCP is served.
    if (
        parts.scheme not in _DEFAULT_PORTS
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
    return parts


def _transport_security(parts: SplitResult) -> TransportSecuritySettings:
    """DNS-rebinding protection: accept only the resource URL's own host (with and without its port)."""
    hostname = parts.hostname or ""
    host = f"[{hostname}]" if ":" in hostname else hostname
    default_port = _DEFAULT_PORTS[parts.scheme]
    port = parts.port or default_port
    origins = [f"{parts.scheme}://{host}:{port}"] + (
        [f"{parts.scheme}://{host}"] if port == default_port else []
    )
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=[f"{host}:{port}", host], allowed_origins=origins
    )


def _sse_routes(mcp_server: MCPServer, security: TransportSecuritySettings) -> list[Route | Mount]:
    """The SDK's legacy `/sse` and `/messages/` routes (its app's other routes are not ours to serve)."""
    routes = mcp_server.sse_app(transport_security=security).routes
    return [
        route for route in routes if isinstance(route, Route | Mount) and route.path in ("/sse", "/messages")
    ]


def _rewrapped(route: Route | Mount, wrap: Callable[[ASGIApp], ASGIApp]) -> Route | Mount:
    """The same route with its ASGI app wrapped (an app object, so Starlette calls it as raw ASGI)."""
    if isinstance(route, Mount):
        return Mount(route.path, app=wrap(route.app))
    return Route(route.path, endpoint=wrap(route.app), methods=route.methods)


async def _check_tool_names(mcp_server: MCPServer, policy: ScopePolicy) -> None:
    """Fail at start-up on a tool_scopes entry naming no tool: a typo would silently drop a scope check."""
    known = {tool.name for tool in await mcp_server.list_tools()}
    unknown = sorted(set(policy.tools) - known)
    if unknown:
        raise RuntimeError(f"tool_scopes names unknown tools: {', '.join(unknown)}")


async def _healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _readyz(settings: ResourceAuth | None) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def readyz(_: Request) -> JSONResponse:
        ready = True
        if settings is not None and isinstance(settings.verifier, JWTVerifier):
            ready = await settings.verifier.jwks.ensure_loaded()  # loads on demand, rate-limited
        if ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "waiting for the auth service's signing keys"}, status_code=503)

    return readyz
