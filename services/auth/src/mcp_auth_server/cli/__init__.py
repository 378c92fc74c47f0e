"""`mcp-auth`: run, migrate and administer the MCP authorization service.

Every failure an operator can cause ends in one line on stderr and exit status 2 (bad
settings or arguments) or 1 (the operation failed), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from mcp_auth_server.cli import clients, grants, keys, resources, server, users
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.db.migrate import DatabaseNotMigrated
from mcp_auth_server.settings import SettingsError
from mcp_auth_server.store.signing_keys import KeysUnreadable

COMMAND_GROUPS = [server, keys, clients, resources, grants, users]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcp-auth", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, None] | None] = args.handler
    try:
        result = handler(args)
        if result is not None:
            asyncio.run(result)
    except (SettingsError, DatabaseNotMigrated, KeysUnreadable) as exc:
        print(f"mcp-auth: {exc}", file=sys.stderr)
        sys.exit(2)
    except CommandError as exc:
        print(f"mcp-auth: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
