"""`mcp-auth serve` and `mcp-auth migrate`.

The web stack, alembic and the database driver are imported inside the commands that use them, so
`mcp-auth --help` and the admin commands never pay for them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_auth_server.settings import AuthSettings


def register(commands: Any) -> None:
    serve_parser = commands.add_parser("serve", help="run the authorization service")
    serve_parser.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1)")
    serve_parser.set_defaults(handler=serve)
    migrate_parser = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_parser.add_argument(
        "--wait",
        type=_seconds,
        default=0,
        metavar="SECONDS",
        help="retry an unreachable database (starting, or not yet resolvable) for up to SECONDS",
    )
    migrate_parser.set_defaults(handler=migrate)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return seconds


def _workers(value: str) -> int:
    workers = int(value)
    if workers < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return workers


def serve(args: argparse.Namespace) -> None:
    from mcp_auth_kit.operator_port import prepare_multiprocess_metrics, remove_multiprocess_metrics

    # First, before any metric exists: several workers sum their metrics through one directory.
    metrics_directory = prepare_multiprocess_metrics() if args.workers > 1 else None
    try:
        _serve(args.workers)
    finally:
        remove_multiprocess_metrics(metrics_directory)


def _serve(workers: int) -> None:
    import asyncio

    import uvicorn

    from mcp_auth_kit.observability import setup_json_logging
    from mcp_auth_server.settings import load_settings

    settings = load_settings()
    asyncio.run(preflight(settings))
    setup_json_logging(settings.auth_log_level.upper())
    options: dict[str, Any] = dict(
        host=settings.auth_host,
        port=settings.port,
        log_config=None,
        access_log=False,
        **_proxy_options(settings),
        **_connection_limits(settings),
    )
    if workers == 1:
        from mcp_auth_server.app import create_app

        uvicorn.run(create_app(settings), **options)
    else:
        uvicorn.run(
            "mcp_auth_server.cli.server:app_from_environment", factory=True, workers=workers, **options
        )


def _connection_limits(settings: AuthSettings) -> dict[str, Any]:
    """What slow or numerous clients can hold when uvicorn is exposed directly (docs/security.md)."""
    from mcp_auth_server.web.request_heads import BoundedHeads

    return {
        "limit_concurrency": settings.auth_limit_concurrency,
        "timeout_keep_alive": settings.auth_timeout_keep_alive,
        # httptools has no limit on the request head of its own (web/request_heads.py).
        "http": BoundedHeads,
        "h11_max_incomplete_event_size": settings.auth_max_header_bytes,
    }


def _proxy_options(settings: AuthSettings) -> dict[str, Any]:
    """Trust X-Forwarded-For only from AUTH_FORWARDED_ALLOW_IPS; it feeds rate limits and audit IPs."""
    if not settings.auth_forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.auth_forwarded_allow_ips}


async def preflight(settings: AuthSettings) -> None:
    """Refuse to start, with one clear line, on what would otherwise fail every request."""
    from mcp_auth_server.crypto.secret_box import SecretBox
    from mcp_auth_server.db.engine import create_engine, create_session_factory
    from mcp_auth_server.db.migrate import ensure_migrated
    from mcp_auth_server.store.signing_keys import KeyRing

    await ensure_migrated(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        box = SecretBox(settings.secret_key, "signing-key")
        await KeyRing(create_session_factory(engine), box, settings.auth_access_token_ttl).load()
    finally:
        await engine.dispose()


def app_from_environment() -> Any:
    """Each worker process builds its own app (and logging) from the already-checked environment."""
    from mcp_auth_kit.observability import setup_json_logging
    from mcp_auth_server.app import create_app
    from mcp_auth_server.settings import load_settings

    settings = load_settings()
    setup_json_logging(settings.auth_log_level.upper())
    return create_app(settings)


def migrate(args: argparse.Namespace) -> None:
    from mcp_auth_server.db.migrate import upgrade
    from mcp_auth_server.settings import load_settings

    settings = load_settings()
    upgrade(settings.database_url, wait=args.wait)
    print("database is at the newest migration")
