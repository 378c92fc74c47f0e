"""`mcp-auth clients add/list/remove`: pre-registered clients.

Kinds: public (PKCE, no secret), confidential (secret, shown once), `--machine` (the
client_credentials grant, limited to the resources and scopes given), and `--resource-server`
(an MCP server's own client: token exchange for upstream tokens and introspection).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

from sqlalchemy import delete, select

from mcp_auth_server.cli.database import command_session, table, when
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource, canonical_resource
from mcp_auth_server.store.clients import create_client

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def register(commands: Any) -> None:
    group = commands.add_parser("clients", help="pre-registered OAuth clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = group.add_parser("add", help="add a client; prints its id (and secret, once)")
    add.add_argument("--name", required=True)
    kind = add.add_mutually_exclusive_group()
    kind.add_argument("--public", action="store_true", help="a public client (PKCE, no secret)")
    kind.add_argument("--machine", action="store_true", help="a machine client (client_credentials)")
    kind.add_argument(
        "--resource-server", metavar="RESOURCE", help="the client of the MCP server at RESOURCE"
    )
    add.add_argument(
        "--redirect-uri", action="append", default=[], help="repeatable; for user-facing clients"
    )
    add.add_argument("--resource", action="append", default=[], help="machine clients: allowed resource")
    add.add_argument("--scope", action="append", default=[], help="machine clients: allowed scope")
    add.add_argument("--client-id", help="choose the id (deployments that configure it up front)")
    add.add_argument(
        "--secret-env",
        metavar="VAR",
        help="take the secret from environment variable VAR (at least 32 characters)",
    )
    add.add_argument(
        "--update",
        action="store_true",
        help="if --client-id exists, update it in place (its grants stay); makes add idempotent",
    )
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=add_client)
    listing = group.add_parser("list", help="list clients with their origin and last use")
    listing.set_defaults(handler=list_clients)
    remove = group.add_parser("remove", help="remove a client and everything granted to it")
    remove.add_argument("client_id")
    remove.set_defaults(handler=remove_client)


CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{4,128}$")


def _check_client_id(client_id: str) -> None:
    # https:// ids are client ID metadata documents; ours are short unreserved strings.
    if not CLIENT_ID.match(client_id):
        raise CommandError("--client-id must be 4-128 letters, digits or . _ ~ -")


def _secret_from_environment(variable: str | None, *, public: bool) -> str | None:
    if variable is None:
        return None
    if public:
        raise CommandError("--secret-env is for confidential clients; a --public client has no secret")
    value = os.environ.get(variable, "")
    if len(value) < 32:
        raise CommandError(f"{variable} must hold a secret of at least 32 characters")
    return value


def _canonical(value: str) -> str:
    try:
        return canonical_resource(value)
    except InvalidResource as exc:
        raise CommandError(f"{value}: {exc}") from None


async def add_client(args: argparse.Namespace) -> None:
    fields: dict[str, Any]
    if args.machine:
        if not args.resource or not args.scope:
            raise CommandError("a machine client needs at least one --resource and one --scope")
        fields = dict(
            origin="machine",
            redirect_uris=[],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=["client_credentials"],
            allowed_resources=[_canonical(r) for r in args.resource],
            allowed_scopes=args.scope,
        )
    elif args.resource_server:
        fields = dict(
            origin="resource_server",
            redirect_uris=[],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=[TOKEN_EXCHANGE],
            served_resource=_canonical(args.resource_server),
        )
    else:
        if not args.redirect_uri:
            raise CommandError("a user-facing client needs at least one --redirect-uri")
        for uri in args.redirect_uri:
            try:
                check_registrable(uri, None)  # the operator vouches for the app: any non-browser scheme
            except InvalidRedirectUri as exc:
                raise CommandError(str(exc)) from None
        fields = dict(
            origin="preregistered",
            redirect_uris=args.redirect_uri,
            token_endpoint_auth_method="none" if args.public else "client_secret_basic",
            grant_types=["authorization_code", "refresh_token"],
        )
    chosen_secret = _secret_from_environment(args.secret_env, public=args.public)
    if args.client_id is not None:
        _check_client_id(args.client_id)
    async with command_session() as (_settings, session):
        existing = await session.get(Client, args.client_id) if args.client_id else None
        if existing is not None and not args.update:
            raise CommandError(f"client {args.client_id} exists (add --update to change it in place)")
        if existing is not None:
            client, secret = existing, _secret_on_update(existing, fields, chosen_secret)
            for name, value in {**fields, "client_name": args.name}.items():
                setattr(client, name, value)
            if secret is not None:
                client.client_secret_hash = hash_secret(secret)
            elif fields["token_endpoint_auth_method"] == "none":
                client.client_secret_hash = None  # a public client has no secret
        else:
            client, secret = create_client(
                session, client_name=args.name, client_id=args.client_id, secret=chosen_secret, **fields
            )
        await session.commit()
    if args.secret_env:
        secret = None  # the operator has it already; never echo a secret back into logs
    result = {"client_id": client.client_id, "client_secret": secret, "kind": client.origin}
    if args.json:
        print(json.dumps(result))
        return
    print(f"client_id:     {client.client_id}")
    if secret:
        print(f"client_secret: {secret}")
        print("The secret is shown only now; it is stored hashed.")


def _secret_on_update(existing: Client, fields: dict[str, Any], chosen: str | None) -> str | None:
    """The new secret to store (and print, unless it came from --secret-env), or None to keep the old.

    `--update` without `--secret-env` keeps the client's secret: re-running a declarative `add` must not
    lock out a client whose secret lives elsewhere. A public client turned confidential has none to
    keep, so it gets a new one, shown once.
    """
    if chosen is not None or fields["token_endpoint_auth_method"] == "none":
        return chosen
    return new_secret(32) if existing.client_secret_hash is None else None


async def list_clients(_args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        clients = (await session.scalars(select(Client).order_by(Client.created_at))).all()
    rows = [
        [
            c.client_id,
            c.origin,
            c.client_name or "-",
            c.token_endpoint_auth_method,
            when(c.created_at),
            when(c.last_used_at),
        ]
        for c in clients
    ]
    print(table(rows, ["CLIENT_ID", "ORIGIN", "NAME", "AUTH", "CREATED", "LAST_USED"]))


async def remove_client(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        result = await session.execute(delete(Client).where(Client.client_id == args.client_id))
        await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise CommandError(f"no client {args.client_id}")
    print(f"removed {args.client_id}")
