"""`mcp-auth`: run, migrate and administer the MCP authorization service.

Every failure an operator can cause ends in one line on stderr and exit status 2 (settings, the
database, the secret: `ConfigurationError`) or 1 (the operation failed: `CommandError`), never a
traceback. Each call imports only the module of the command it runs: `--help` loads no database
driver, web framework or settings.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.errors import ConfigurationError

# Top-level command -> (the module under cli/ that registers and runs it, its one-line help).
COMMANDS = {
    "serve": ("server", "run the authorization service"),
    "migrate": ("server", "apply database migrations and exit"),
    "keys": ("keys", "token signing keys"),
    "clients": ("clients", "pre-registered OAuth clients"),
    "resources": ("resources", "resource servers (MCP servers)"),
    "grants": ("grants", "users' grants to clients"),
    "users": ("users", "users who signed in; offboarding"),
    "issuers": ("issuers", "trusted token issuers: enterprise IdPs (ID-JAG), workload issuers"),
}


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_chosen_command(arguments)).parse_args(arguments)
    try:
        result = args.handler(args)
        if result is not None:  # an async command
            import asyncio

            asyncio.run(result)
    except ConfigurationError as exc:
        print(f"mcp-auth: {exc}", file=sys.stderr)
        sys.exit(2)
    except CommandError as exc:
        print(f"mcp-auth: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The full grammar of `command` (its module imported); every other command by name and help only."""
    parser = argparse.ArgumentParser(prog="mcp-auth", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registered: set[str] = set()
    for name, (module_name, help_text) in COMMANDS.items():
        if command in COMMANDS and COMMANDS[command][0] == module_name:
            if module_name not in registered:
                module = importlib.import_module(f"mcp_auth_server.cli.{module_name}")
                module.register(commands)
                registered.add(module_name)
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _chosen_command(arguments: list[str]) -> str | None:
    """The first word that is not an option: the command argparse will dispatch on."""
    return next((word for word in arguments if not word.startswith("-")), None)
