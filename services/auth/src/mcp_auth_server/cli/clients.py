"""`mcp-auth clients add/list/remove`: pre-registered clients.

Kinds: public (PKCE, no secret), confidential (secret, shown once), `--machine` (the
client_credentials grant, limited to the resources and scopes given), and `--resource-server`
(an MCP server's own client: token exchange for upstream tokens and introspection).
`--jwt-bearer` also registers a confidential or machine client for the JWT-bearer grant (RFC 7523):
ID-JAGs from a trusted enterprise IdP, workload tokens from a trusted workload issuer.

A confidential client may authenticate with its own key instead of a secret (`private_key_jwt`, RFC
7523 §2.2): `--jwks-uri URL` where it publishes its public keys, or `--jwks` with the JWK Set itself
(JSON, or `@file`); or with its platform's token (`--workload ISSUER SUBJECT`: a Kubernetes service
account, a GitHub Actions job, from an issuer `mcp-auth issuers add` trusts). It then has no secret at all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from mcp_auth_server.cli.database import command_session, table, when
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource, canonical_resource
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.clients import PRIVATE_KEY_JWT, create_client, find_workload_client

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


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
    add.add_argument(
        "--jwt-bearer",
        action="store_true",
        help="also the JWT-bearer grant: ID-JAGs of trusted IdPs, workload tokens (confidential clients)",
    )
    add.add_argument("--resource", action="append", default=[], help="machine clients: allowed resource")
    add.add_argument("--scope", action="append", default=[], help="machine clients: allowed scope")
    add.add_argument("--client-id", help="choose the id (deployments that configure it up front)")
    add.add_argument(
        "--secret-env",
        metavar="VAR",
        help="take the secret from environment variable VAR (at least 32 characters)",
    )
    keys = add.add_mutually_exclusive_group()
    keys.add_argument(
        "--jwks-uri", metavar="URL", help="private_key_jwt: where the client publishes its public keys"
    )
    keys.add_argument(
        "--jwks", metavar="JSON|@FILE", help="private_key_jwt: the client's public keys (a JWK Set)"
    )
    keys.add_argument(
        "--workload",
        nargs=2,
        metavar=("ISSUER", "SUBJECT"),
        help="private_key_jwt: the workload whose token (from a trusted workload issuer) is its assertion",
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


def _registered_keys(args: argparse.Namespace, settings: AuthSettings) -> dict[str, Any]:
    """The private_key_jwt fields from --jwks / --jwks-uri (checked as /register checks them), or {}."""
    if args.jwks_uri is None and args.jwks is None and args.workload is None:
        return {}
    # Here, not at the top: `clients --help` and `clients list` must not load httpx and the kit.
    from mcp_auth_server.oauth.client_jwks import InvalidJwksUri, check_jwks_uri, check_public_jwks

    if args.public:
        raise CommandError("--jwks and --jwks-uri are for confidential clients; a --public client has none")
    if args.secret_env:
        raise CommandError("a client authenticates with a secret or with keys: not --secret-env and --jwks")
    fields: dict[str, Any] = {
        "token_endpoint_auth_method": PRIVATE_KEY_JWT,
        "jwks": None,
        "jwks_uri": None,
        "workload_issuer": None,
        "workload_subject": None,
    }
    if args.workload is not None:
        issuer, subject = args.workload
        if not issuer.startswith(("https://", "http://")) or not subject or len(subject) > 512:
            raise CommandError(
                "--workload takes the issuer's URL and the workload's subject (its token's sub)"
            )
        fields.update(workload_issuer=issuer, workload_subject=subject)
        return fields
    if args.jwks_uri is not None:
        try:
            fields["jwks_uri"] = check_jwks_uri(args.jwks_uri, allow_loopback=settings.is_local)
        except InvalidJwksUri as exc:
            raise CommandError(f"--jwks-uri: {exc}") from None
        return fields
    text = args.jwks
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise CommandError(f"--jwks: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        fields["jwks"] = check_public_jwks(json.loads(text))
    except json.JSONDecodeError:
        raise CommandError("--jwks: not JSON (give the JWK Set, or @file)") from None
    except ValueError as exc:
        raise CommandError(f"--jwks: {exc}") from None
    return fields


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
    elif args.jwt_bearer and not args.redirect_uri:
        if args.public:
            raise CommandError("--jwt-bearer is for confidential clients (the ID-JAG draft's rule)")
        fields = dict(
            origin="preregistered",
            redirect_uris=[],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=[],
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
    if args.jwt_bearer:
        if args.public or args.resource_server:
            raise CommandError("--jwt-bearer is for confidential user-facing clients and --machine clients")
        fields["grant_types"] = [*fields["grant_types"], JWT_BEARER]
    chosen_secret = _secret_from_environment(args.secret_env, public=args.public)
    if args.client_id is not None:
        _check_client_id(args.client_id)
    async with command_session() as (settings, session):
        fields.update(_registered_keys(args, settings))
        existing = await session.get(Client, args.client_id) if args.client_id else None
        if fields.get("workload_issuer"):
            holder = await find_workload_client(
                session, fields["workload_issuer"], fields["workload_subject"]
            )
            if holder is not None and holder is not existing:
                raise CommandError(f"client {holder.client_id} is already registered for that workload")
        if existing is not None and not args.update:
            raise CommandError(f"client {args.client_id} exists (add --update to change it in place)")
        if existing is not None:
            client, secret = existing, _secret_on_update(existing, fields, chosen_secret)
            for name in ("jwks", "jwks_uri", "workload_issuer", "workload_subject"):
                fields.setdefault(name, None)
            for name, value in {**fields, "client_name": args.name}.items():
                setattr(client, name, value)
            if client.token_endpoint_auth_method in (PRIVATE_KEY_JWT, "none"):
                secret = None
                client.client_secret_hash = None  # keys, or nothing, instead of a secret
            elif secret is not None:
                client.client_secret_hash = hash_secret(secret)
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
    if client.token_endpoint_auth_method == PRIVATE_KEY_JWT:
        print(
            "It authenticates with private_key_jwt: assertions signed by its registered keys, aud",
            settings.auth_issuer,
        )


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
