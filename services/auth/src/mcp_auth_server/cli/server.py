"""`mcp-auth serve` and `mcp-auth migrate`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import ensure_migrated, upgrade
from mcp_auth_server.settings import AuthSettings, load_settings
from mcp_auth_server.store.signing_keys import KeyRing


def register(commands: Any) -> None:
    serve_parser = commands.add_parser("serve", help="run the authorization service")
    serve_parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve_parser.set_defaults(handler=serve)
    migrate_parser = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate_parser.set_defaults(handler=migrate)


def serve(args: argparse.Namespace) -> None:
    # Imported here: the web stack (and the kit's logging) costs a second the admin commands need not pay.
    import uvicorn

    from mcp_auth_kit.observability import setup_json_logging
    from mcp_auth_server.app import create_app

    settings = load_settings()
    asyncio.run(preflight(settings))
    setup_json_logging(settings.auth_log_level.upper())
    host, port = settings.auth_host, settings.port
    if args.workers > 1:
        uvicorn.run(
            "mcp_auth_server.cli.server:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            log_config=None,
            access_log=False,
            **_proxy_options(settings),
        )
    else:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            **_proxy_options(settings),
        )


def _proxy_options(settings: AuthSettings) -> dict[str, Any]:
    """Trust X-Forwarded-For only from AUTH_FORWARDED_ALLOW_IPS; it feeds rate limits and audit IPs."""
    if not settings.auth_forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.auth_forwarded_allow_ips}


async def preflight(settings: AuthSettings) -> None:
    """Refuse to start, with one clear line, on what would otherwise fail every request."""
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

    settings = load_settings()
    setup_json_logging(settings.auth_log_level.upper())
    return create_app(settings)


def migrate(_args: argparse.Namespace) -> None:
    settings = load_settings()
    upgrade(settings.database_url)
    print("database is at the newest migration")
