"""`mcp-auth resources add/list/remove`: the MCP servers tokens may be issued for."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from mcp_auth_server.cli.database import command_session, table
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.clock import now
from mcp_auth_server.config_problems import first_problem
from mcp_auth_server.db.models import Resource
from mcp_auth_server.oauth.rfc8707_resource_indicators import canonical_resource
from mcp_auth_server.settings import AuthSettings, ResourceConfig
from mcp_auth_server.store.resources import merged, registered


def register(commands: Any) -> None:
    group = commands.add_parser("resources", help="resource servers (MCP servers)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = group.add_parser("add", help="add or update a resource server")
    add.add_argument("resource", help="its canonical MCP URL, e.g. https://tools.example.com/mcp")
    add.add_argument("--scope", action="append", required=True, help="repeatable")
    add.add_argument("--default-scope", action="append", default=[], help="granted when a client asks none")
    add.add_argument("--name")
    add.add_argument(
        "--describe",
        action="append",
        default=[],
        metavar="SCOPE=TEXT",
        help="what a scope lets the server do, shown on the consent page (repeatable)",
    )
    add.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="URL",
        help="another URL of the same server, e.g. its legacy https://tools.example.com/sse (repeatable)",
    )
    add.add_argument(
        "--upstream-token-scope",
        metavar="SCOPE",
        help="the scope (one of --scope) that lets this server get the user's upstream token by exchange",
    )
    add.add_argument(
        "--dpop",
        choices=["required", "allowed"],
        default="allowed",
        help="required: tokens only for token requests with a DPoP proof (RFC 9449); default allowed",
    )
    add.set_defaults(handler=add_resource)
    group.add_parser(
        "list", help="list resource servers: added here (database) and configured in this shell"
    ).set_defaults(handler=list_resources)
    remove = group.add_parser("remove", help="remove a resource server added with the CLI")
    remove.add_argument("resource")
    remove.set_defaults(handler=remove_resource)


async def add_resource(args: argparse.Namespace) -> None:
    descriptions: dict[str, str] = {}
    for described in args.describe:
        scope, equals, text = described.partition("=")
        if not equals:
            raise CommandError(
                f"--describe {described!r}: write SCOPE=TEXT, e.g. notes:read='read your notes'"
            )
        descriptions[scope] = text
    try:  # exactly the rules of an AUTH_RESOURCES entry
        config = ResourceConfig(
            resource=args.resource,
            scopes=args.scope,
            default_scopes=args.default_scope or None,
            name=args.name,
            scope_descriptions=descriptions,
            aliases=args.alias,
            upstream_token_scope=args.upstream_token_scope,
            dpop=args.dpop,
        )
    except ValidationError as exc:
        raise CommandError(f"{args.resource}: {first_problem(exc, ResourceConfig, 'a resource')}") from None
    resource = config.resource
    async with command_session() as (_settings, session):
        row = await session.get(Resource, resource) or Resource(resource=resource, created_at=now())
        row.scopes, row.default_scopes, row.name = config.scopes, config.default_scopes or [], config.name
        row.scope_descriptions, row.aliases = config.scope_descriptions, config.aliases
        row.upstream_token_scope = config.upstream_token_scope
        row.dpop = config.dpop
        session.add(row)
        await session.commit()
    exchange = f"; upstream tokens with {config.upstream_token_scope}" if config.upstream_token_scope else ""
    print(f"resource {resource}: scopes {' '.join(config.scopes)}{exchange}; DPoP {config.dpop}")


async def list_resources(_args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        added = (await session.scalars(select(Resource))).all()
        configured = [registered(config) for config in settings.resources]
        resources = sorted(merged(added, configured).values(), key=lambda r: r.resource)
    sources = _sources(settings, {row.resource for row in added}, {r.resource for r in configured})
    rows = [
        [
            r.resource,
            sources[r.resource],
            " ".join(r.scopes),
            " ".join(r.default_scopes),
            r.upstream_token_scope or "-",
            r.dpop,
            r.name,
        ]
        for r in resources
    ]
    print(table(rows, ["RESOURCE", "SOURCE", "SCOPES", "DEFAULT", "UPSTREAM_TOKEN", "DPOP", "NAME"]))
    if configured:
        # The CLI reads the settings of the shell it runs in, which need not be the server's.
        print(
            f"note: rows from {_configured_source(settings)} come from this shell's environment, "
            "not necessarily the running service's; rows from database are shared by every replica",
            file=sys.stderr,
        )


def _configured_source(settings: AuthSettings) -> str:
    return "AUTH_RESOURCES" if settings.auth_resources is not None else "loopback-default"


def _sources(settings: AuthSettings, in_database: set[str], in_configuration: set[str]) -> dict[str, str]:
    """Where each row comes from: the database (`resources add`), AUTH_RESOURCES, or the loopback defaults."""
    configured = _configured_source(settings)
    sources = {resource: "database" for resource in in_database}
    for resource in in_configuration:
        sources[resource] = f"{configured} (over database)" if resource in in_database else configured
    return sources


async def remove_resource(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        result = await session.execute(
            delete(Resource).where(Resource.resource == canonical_resource(args.resource))
        )
        await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise CommandError(
            f"no resource {args.resource} was added with the CLI (configured ones come from AUTH_RESOURCES)"
        )
    print(f"removed {args.resource}")
