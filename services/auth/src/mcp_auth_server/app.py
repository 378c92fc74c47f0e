"""The composition root: `create_app(settings)` builds the auth service from its settings.

Every endpoint module contributes a router; this file is where a reader sees them all. With an
issuer that has a path (`https://host/tenant`), endpoints live under that path and metadata is
also served at the RFC 8414 §3.1 location (`/.well-known/oauth-authorization-server/tenant`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mcp_auth_kit.observability import ObservabilityMiddleware
from mcp_auth_kit.operator_port import OperatorPort
from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces
from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProofVerifier
from mcp_auth_kit.tracing import setup_tracing
from mcp_auth_server import clock
from mcp_auth_server.crypto.secret_box import SecretBox, derive_key
from mcp_auth_server.db.engine import PoolOptions, create_engine, create_session_factory
from mcp_auth_server.db.migrate import ensure_migrated
from mcp_auth_server.db.statements import UNAVAILABLE_SQLSTATES
from mcp_auth_server.db.tracing import trace_database
from mcp_auth_server.endpoints import (
    account_session,
    authorize,
    callback,
    connected_apps,
    consent,
    dev_login,
    health,
    introspect,
    jwks,
    metadata,
    register,
    revoke,
    token,
)
from mcp_auth_server.endpoints.responses import oauth_error_response
from mcp_auth_server.oauth.client_id_metadata_document import MetadataDocumentFetcher
from mcp_auth_server.oauth.client_jwks import ClientKeys
from mcp_auth_server.oauth.errors import NO_STORE, OAuthError, invalid_request
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.client_resolution import ClientResolver
from mcp_auth_server.store.housekeeping import prune_periodically
from mcp_auth_server.store.key_rotation import rotate_signing_key_if_due
from mcp_auth_server.store.replay_cache import (
    DatabaseReplayCache,
    RedisReplayCache,
    ReplayCache,
    ReplayCacheUnavailable,
)
from mcp_auth_server.store.resources import ResourceRegistry
from mcp_auth_server.store.signing_keys import KeyRing, ensure_signing_key
from mcp_auth_server.store.trusted_issuers import TrustedIssuerRegistry
from mcp_auth_server.upstreams.registry import build_connector
from mcp_auth_server.web.body_limits import BoundedBodies
from mcp_auth_server.web.cookies import CookiePolicy
from mcp_auth_server.web.cors import OpenCorsForPaths
from mcp_auth_server.web.pages import error_page
from mcp_auth_server.web.rate_limits import RateLimits, rate_limit_store

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "web" / "templates"
CORS_PATHS = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/jwks.json",
    "/token",
    "/register",
    "/revoke",
    "/introspect",
]


def upstream_timeout(seconds: float) -> httpx.Timeout:
    """Upstream calls are bounded (AUTH_UPSTREAM_TIMEOUT_SECONDS): a slow GitHub cannot hold requests open."""
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def create_app(settings: AuthSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        operator_port = _operator_port(app, settings)  # first: a taken port fails before anything opens
        runtime = await build_runtime(settings)
        app.state.runtime = runtime
        # What start-up built lives as long as the process: the collector need not scan it again.
        gc.collect()
        gc.freeze()
        reloader = asyncio.create_task(_reload_periodically(runtime))
        housekeeper = asyncio.create_task(prune_periodically(runtime.engine, settings))
        try:
            yield
        finally:
            reloader.cancel()
            housekeeper.cancel()
            await runtime.trusted_issuers.aclose()
            await runtime.http.aclose()
            await runtime.clients.aclose()
            await runtime.rate_limits.aclose()
            await runtime.client_keys.aclose()
            if runtime.redis is not None:
                await runtime.redis.aclose()
            await runtime.engine.dispose()
            if operator_port is not None:
                operator_port.stop()

    # The OpenAPI description and its browser are operator documents: on the metrics port, never public.
    # FastAPI's own OpenTelemetry is off: tracing is mcp_auth_kit/tracing.py's (on with OTEL_* set), and
    # FastAPI asking OpenTelemetry (which reads os.environ) whether to trace cost 6 % of a token.
    app = FastAPI(
        title="MCP auth service",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    prefix = urlsplit(settings.auth_issuer).path
    # First: the token endpoint as a plain Starlette route (endpoints/token.py says why).
    app.router.routes.insert(0, token.fast_route(prefix))
    app.include_router(health.router)
    routers = [metadata, jwks, register, authorize, consent, callback, token, revoke, introspect]
    routers += [connected_apps, account_session]  # the user's own pages
    if settings.auth_upstream == "dev":
        routers.append(dev_login)
    for module in routers:
        app.include_router(module.router, prefix=prefix)
    cors_paths = {f"{prefix}{path}" for path in CORS_PATHS}
    if prefix:
        # RFC 8414 §3.1 inserts the well-known segment between host and path.
        for well_known in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            app.add_api_route(
                f"{well_known}{prefix}", metadata.metadata, methods=["GET"], include_in_schema=False
            )
            cors_paths.add(f"{well_known}{prefix}")
    too_large = page_templates()
    app.add_middleware(
        BoundedBodies,
        limit=settings.auth_max_body_bytes,
        page=lambda message: error_page(too_large, 413, "Request too large", message.capitalize() + "."),
    )
    app.add_middleware(OpenCorsForPaths, paths=cors_paths)  # outside: a 413 to /token carries CORS too
    # Outermost, so every response (errors included) gets a request id, a log line and metrics.
    app.add_middleware(ObservabilityMiddleware)
    setup_tracing(app, "mcp-auth-server")  # OTEL_EXPORTER_OTLP_ENDPOINT; nothing when unset
    _install_error_handlers(app)
    return app


def page_templates() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), enable_async=False)


def _operator_port(app: FastAPI, settings: AuthSettings) -> OperatorPort | None:
    """/metrics, /openapi.json and /docs on AUTH_METRICS_PORT (none when it is not set)."""
    if settings.auth_metrics_port is None:
        return None
    openapi = json.dumps(app.openapi()).encode()
    docs = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} (operator)").body
    port = OperatorPort(
        settings.auth_host,
        settings.auth_metrics_port,
        {"/openapi.json": (openapi, "application/json"), "/docs": (bytes(docs), "text/html; charset=utf-8")},
    )
    port.start()
    return port


async def build_runtime(settings: AuthSettings) -> Runtime:
    """Everything request handlers share, from the settings: the database (migrated), keys, upstream."""
    engine = create_engine(settings.database_url, PoolOptions.from_settings(settings))
    trace_database(engine)
    await ensure_migrated(settings.database_url)
    sessions = create_session_factory(engine)
    secret = settings.secret_key
    signing_box = SecretBox(secret, "signing-key")
    async with sessions() as session:
        await ensure_signing_key(session, signing_box, settings.auth_signing_alg)
    keyring = KeyRing(sessions, signing_box, settings.auth_access_token_ttl)
    await keyring.load()
    resources = ResourceRegistry(sessions, settings.resources)
    await resources.load()
    http = httpx.AsyncClient(
        timeout=upstream_timeout(settings.auth_upstream_timeout_seconds), follow_redirects=False
    )
    redis = Redis.from_url(settings.auth_redis_url) if settings.auth_redis_url else None
    replay: ReplayCache = RedisReplayCache(redis) if redis is not None else DatabaseReplayCache(engine)
    trusted_issuers = TrustedIssuerRegistry(sessions, settings.auth_trusted_issuers, http)
    await trusted_issuers.load()
    templates = page_templates()
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        keyring=keyring,
        resources=resources,
        upstream=build_connector(settings, http),
        http=http,
        templates=templates,
        upstream_token_box=SecretBox(secret, "upstream-token"),
        upstream_request_box=SecretBox(secret, "upstream-request"),
        cookies=CookiePolicy(settings.auth_issuer, secret),
        clients=ClientResolver(
            sessions,
            _metadata_document_fetcher(settings),
            settings.auth_client_idle_days,
            settings.auth_client_cache_seconds,
        ),
        rate_limits=RateLimits(settings, rate_limit_store(settings)),
        replay=replay,
        redis=redis,
        dpop=_dpop_verifier(settings, replay),
        # Loopback jwks_uri hosts only when this server itself runs on loopback, as for metadata documents.
        client_keys=ClientKeys(
            allow_loopback=settings.is_local, ca_bundle=settings.auth_client_metadata_ca_bundle
        ),
        trusted_issuers=trusted_issuers,
    )


def _dpop_verifier(settings: AuthSettings, replay: ReplayCache) -> DPoPProofVerifier:
    """RFC 9449 proofs at /token: every replica remembers `jti`s in one place and agrees on nonces."""
    nonces = None
    if settings.auth_dpop_nonces:
        secret = derive_key(settings.secret_key, "mcp-auth/dpop-nonce")
        nonces = DPoPNonces(secret, context=f"{settings.auth_issuer}/token")
    return DPoPProofVerifier(replay=replay, replay_namespace="dpop", nonces=nonces, now=clock.now)


def _metadata_document_fetcher(settings: AuthSettings) -> MetadataDocumentFetcher | None:
    if not settings.auth_client_metadata_documents:
        return None
    # Loopback documents are fetched only when this server itself runs on loopback (local runs).
    return MetadataDocumentFetcher(
        allow_loopback=settings.is_local,
        allowed_schemes=frozenset(settings.auth_registration_allowed_schemes),
        ca_bundle=settings.auth_client_metadata_ca_bundle,
    )


async def _reload_periodically(runtime: Runtime) -> None:
    """Pick up keys rotated and resources added by the CLI or another replica."""
    while True:
        await asyncio.sleep(runtime.settings.auth_reload_seconds)
        try:
            await rotate_signing_key_if_due(runtime)  # AUTH_KEY_ROTATION_DAYS
            await runtime.keyring.load()
            await runtime.resources.load()
            await runtime.trusted_issuers.load()
        except Exception:  # keep serving with the keys we have; the next round retries
            log.exception("reloading signing keys failed")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OAuthError)
    async def oauth_error(_request: Request, exc: OAuthError) -> Response:
        return oauth_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return oauth_error_response(invalid_request(f"{where}: {first.get('msg', 'malformed request')}"))

    async def database_unavailable(_request: Request, exc: Exception) -> Response:
        # Fail fast and tell clients when to retry; never a 500 with a traceback.
        if isinstance(exc, DBAPIError) and _sqlstate(exc).startswith(DATA_EXCEPTION_SQLSTATE):
            # A value the database cannot hold (a NUL byte, an over-long string) slipped past validation:
            # the client's input is at fault, so it gets invalid_request, not a 500.
            log.warning("database refused a value: %s", type(exc.orig).__name__)
            return oauth_error_response(invalid_request("a parameter has a value this server cannot accept"))
        description = "the database is unavailable, retry shortly"
        if isinstance(exc, DBAPIError) and _sqlstate(exc).startswith(TRANSACTION_ROLLBACK_SQLSTATE):
            # Two requests of one user ended each other's grants at once (a deadlock, each holding a
            # grant the other revokes): the database rolled this one back whole, the other finished the
            # job. A retry sees the outcome; nothing was half-done.
            log.warning("transaction rolled back by the database: %s", type(exc.orig).__name__)
            description = "a concurrent request changed the same credentials, retry shortly"
        elif isinstance(exc, DBAPIError) and not _is_outage(exc):
            raise exc  # a bug (e.g. an IntegrityError), not an outage: a 500, logged with its traceback
        else:
            log.warning("database unavailable: %s", type(exc).__name__)
            DATABASE_UNAVAILABLE.inc()
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": description},
            status_code=503,
            headers={**NO_STORE, "Retry-After": "2"},
        )

    # Connection-level failures only; an IntegrityError is a bug and must not pass as an outage.
    # TimeoutError: asyncpg's connect and command timeouts (nothing else here raises the builtin).
    for exc_type in (DBAPIError, PoolTimeout, ConnectionError, TimeoutError):
        app.add_exception_handler(exc_type, database_unavailable)

    async def shared_state_unavailable(_request: Request, exc: Exception) -> Response:
        # AUTH_REDIS_URL (rate limits, single-use identifiers) down: refuse for now, never fail open.
        log.warning("shared state (Redis) unavailable: %s", type(exc).__name__)
        SHARED_STATE_UNAVAILABLE.inc()
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": "retry shortly"},
            status_code=503,
            headers={**NO_STORE, "Retry-After": "2"},
        )

    # The replay cache reports its Redis outage as ReplayCacheUnavailable (the kit's 503 at MCP servers).
    for outage in (RedisError, ReplayCacheUnavailable):
        app.add_exception_handler(outage, shared_state_unavailable)


# Alerts (deploy/monitoring/alerts.yaml) watch these: requests refused because a store was unreachable.
DATABASE_UNAVAILABLE = Counter(
    "mcp_auth_database_unavailable_total", "Requests answered 503 because the database was unavailable"
)
SHARED_STATE_UNAVAILABLE = Counter(
    "mcp_auth_shared_state_unavailable_total",
    "Requests answered 503 because the shared state (Redis: rate limits, replay caches) was unavailable",
)


# Class 22, data exception: invalid text (e.g. NUL), string too long, numeric out of range.
DATA_EXCEPTION_SQLSTATE = "22"
# Class 40, transaction rollback: a deadlock (40P01) or serialization failure (40001).
TRANSACTION_ROLLBACK_SQLSTATE = "40"


def _sqlstate(exc: DBAPIError) -> str:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate if isinstance(sqlstate, str) else ""


def _is_outage(exc: DBAPIError) -> bool:
    """Whether a driver error means the database went away, rather than a query being wrong.

    asyncpg's errors reach SQLAlchemy as plain `DBAPIError`s (a shutdown mid-query, "the database
    system is shutting down" on connect) or as `InternalError` on a connection the server cut
    ("another operation is in progress"): measured by faults/test_database_outage.py.
    """
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return True
    return _sqlstate(exc).startswith(UNAVAILABLE_SQLSTATES)
