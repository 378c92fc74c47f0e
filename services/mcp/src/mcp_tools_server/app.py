"""The composition root: builds the tools' collaborators from the settings and serves them behind the kit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from mcp_auth_kit import ClientCredentials, Introspection, UpstreamTokenClient, protect, setup_json_logging
from mcp_auth_kit.tracing import setup_tracing
from mcp_tools_server.github_api import GitHubClient
from mcp_tools_server.server import BASE_SCOPE, NAME, TOOL_SCOPES, build_mcp_server
from mcp_tools_server.settings import Settings, load_settings

logger = logging.getLogger(__name__)

# Bounds every outbound call (GitHub, token exchange) so a slow dependency fails a tool call, not the server.
OUTBOUND_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def create_app(settings: Settings) -> FastAPI:
    http = httpx.AsyncClient(timeout=OUTBOUND_TIMEOUT, follow_redirects=False)
    credentials = settings.client_credentials()
    upstream_tokens = _upstream_tokens(settings, credentials, http)
    server = build_mcp_server(GitHubClient(settings.github_api_url, http), upstream_tokens)
    app = protect(
        server,
        resource_url=settings.resource_url,
        issuer=settings.auth_issuer or "",  # unused when auth is off
        scopes=[BASE_SCOPE],
        tool_scopes=TOOL_SCOPES,
        resource_name=NAME,
        auth=settings.auth_enabled,
        introspection=_introspection(settings, credentials),
        internal_url=settings.auth_internal_url,
        metrics_port=settings.metrics_port,
        metrics_host=settings.host,
        dpop=settings.dpop,
        dpop_nonce_secret=settings.dpop_nonce_secret.get_secret_value()
        if settings.dpop_nonce_secret
        else None,
        dpop_redis_url=settings.redis_url,
        sse=True,
        # Every request stands alone, so replicas behind a load balancer need no sticky sessions.
        json_response=True,
        stateless_http=True,
    )
    setup_tracing(app, "mcp-tools-server")  # OTEL_EXPORTER_OTLP_ENDPOINT; nothing when unset
    run_kit = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with http, run_kit(app):
            yield

    app.router.lifespan_context = lifespan
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory: each worker process configures its logging and reads the environment itself."""
    setup_json_logging()
    return create_app(load_settings())


def _introspection(settings: Settings, credentials: ClientCredentials | None) -> Introspection | None:
    """MCP_INTROSPECTION=on: revocation bites within seconds, at one introspection per token and 15 s."""
    if settings.introspection == "off" or credentials is None:
        return None
    return Introspection(credentials.client_id, credentials.secret, private_key=credentials.private_key)


def _upstream_tokens(
    settings: Settings, credentials: ClientCredentials | None, http: httpx.AsyncClient
) -> UpstreamTokenClient | None:
    if not settings.auth_enabled:
        return None
    if settings.auth_issuer is None or credentials is None:
        logger.warning("get_github_repos cannot work: MCP_CLIENT_ID (and its secret or key) is not set")
        return None
    return UpstreamTokenClient(
        issuer=settings.auth_issuer,
        client_id=credentials.client_id,
        client_secret=credentials.secret,
        private_key=credentials.private_key,
        http_client=http,
        internal_url=settings.auth_internal_url,
    )
