"""`mcp-tools serve`: checks the settings, then runs the MCP service under uvicorn until SIGTERM or Ctrl-C.

`--help` and a settings mistake are answered before uvicorn, the kit or the MCP SDK are imported.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_tools_server.settings import Settings

# Exit status for a configuration the operator must fix (like argparse's usage errors).
EXIT_BAD_SETTINGS = 2
# Long-lived SSE streams must not keep a stopping replica alive; clients reconnect elsewhere.
GRACEFUL_SHUTDOWN_SECONDS = 10


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-tools", description="The MCP tools service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve MCP over HTTP; configured by MCP_* variables (docs/configuration.md)"
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    arguments = parser.parse_args(argv)
    if arguments.workers < 1:
        parser.error("--workers must be at least 1")

    from mcp_tools_server.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"mcp-tools: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    if arguments.workers > 1 and settings.auth == "on" and settings.redis_url is None:
        # RFC 9449 §11.1: a DPoP proof is accepted once. Each worker's own memory would let a replay
        # on a new connection succeed at the next worker.
        print(
            f"mcp-tools: --workers {arguments.workers} needs MCP_REDIS_URL (e.g. redis://host:6379/0), "
            "so the workers share the memory of used DPoP proofs; or run one worker",
            file=sys.stderr,
        )
        return EXIT_BAD_SETTINGS
    _serve(settings, workers=arguments.workers)
    return 0


def _serve(settings: Settings, *, workers: int) -> None:
    from mcp_auth_kit.operator_port import prepare_multiprocess_metrics, remove_multiprocess_metrics

    # First, before any metric exists: several workers sum their metrics through one directory.
    metrics_directory = prepare_multiprocess_metrics() if workers > 1 else None
    import uvicorn

    from mcp_auth_kit.observability import setup_json_logging

    setup_json_logging()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it and the process dies by the signal (exit
    # 143). As Ctrl-C's KeyboardInterrupt, which uvicorn.run absorbs, a requested stop exits 0 instead.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # Every worker builds its own app from the same environment (already validated above); the stateless
        # transport lets any worker, on any replica, answer any request.
        uvicorn.run(
            "mcp_tools_server.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.listen_port,
            workers=workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    finally:
        remove_multiprocess_metrics(metrics_directory)


if __name__ == "__main__":
    sys.exit(main())
