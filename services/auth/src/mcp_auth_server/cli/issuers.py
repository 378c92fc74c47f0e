"""`mcp-auth issuers add/list/remove/pin`: trusted token issuers (enterprise IdPs and workload issuers).

An entry added here follows exactly the rules of an AUTH_TRUSTED_ISSUERS entry (it is validated as a
`TrustedIssuerConfig`), and AUTH_TRUSTED_ISSUERS wins over an entry of the same issuer. Every replica
picks up a change within seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from mcp_auth_server.cli.database import command_session, table
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.clock import now
from mcp_auth_server.config_problems import first_problem
from mcp_auth_server.db.models import TrustedIssuer, User
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig, check_transport
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.trusted_issuers import merged


def register(commands: Any) -> None:
    group = commands.add_parser("issuers", help="trusted token issuers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = group.add_parser("add", help="add or replace a trusted issuer")
    add.add_argument("issuer", help="exactly as its tokens' iss names it, e.g. https://acme.okta.com")
    add.add_argument("--kind", choices=["enterprise-idp", "workload"], required=True)
    add.add_argument("--name", help="shown in listings and audit events")
    keys = add.add_mutually_exclusive_group()
    keys.add_argument("--jwks-uri", help="where its keys are (default: from its OpenID/RFC 8414 metadata)")
    keys.add_argument("--jwks-file", type=Path, help="a JWK Set file: static keys for an unreachable issuer")
    add.add_argument(
        "--algorithm", action="append", default=[], help="accepted signature algorithm (repeatable)"
    )
    add.add_argument("--max-lifetime", type=int, help="longest accepted token lifetime, seconds")
    idp = add.add_argument_group("enterprise-idp")
    idp.add_argument("--user-claim", choices=["sub", "email"], default="sub")
    idp.add_argument("--no-link-by-email", action="store_true", help="never link first-seen users by email")
    idp.add_argument("--no-create-users", action="store_true", help="refuse users neither pinned nor linked")
    workload = add.add_argument_group("workload")
    workload.add_argument("--audience", help="the aud its tokens carry (default: our issuer or token URL)")
    workload.add_argument(
        "--subject", action="append", default=[], metavar="PATTERN", help="exact or glob (*), repeatable"
    )
    workload.add_argument("--resource", help="the MCP server those subjects may reach")
    workload.add_argument("--scope", action="append", default=[], help="their scopes there (repeatable)")
    workload.add_argument("--identity", help="the machine identity their tokens name (default: issuer#sub)")
    workload.add_argument(
        "--reusable", action="store_true", help="accept a token more than once (Kubernetes)"
    )
    add.set_defaults(handler=add_issuer)
    group.add_parser(
        "list", help="list trusted issuers: added here and configured in this shell"
    ).set_defaults(handler=list_issuers)
    remove = group.add_parser("remove", help="remove a trusted issuer added with the CLI")
    remove.add_argument("issuer")
    remove.set_defaults(handler=remove_issuer)
    pin = group.add_parser("pin", help="map an enterprise IdP's user to a user here (an admin's decision)")
    pin.add_argument("issuer")
    pin.add_argument("claim_value", help="the value of the issuer's user_claim (its sub, or the email)")
    pin.add_argument("user_id", help="our user id (`mcp-auth users list`)")
    pin.set_defaults(handler=pin_user)


def _entry(args: argparse.Namespace) -> dict[str, Any]:
    entry: dict[str, Any] = {"issuer": args.issuer, "kind": args.kind, "name": args.name}
    if args.jwks_uri:
        entry["jwks_uri"] = args.jwks_uri
    if args.jwks_file:
        try:
            entry["jwks"] = json.loads(args.jwks_file.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"--jwks-file {args.jwks_file}: {exc}") from None
    if args.algorithm:
        entry["algorithms"] = args.algorithm
    if args.max_lifetime is not None:
        entry["max_lifetime"] = args.max_lifetime
    if args.kind == "enterprise-idp":
        entry.update(
            user_claim=args.user_claim,
            link_by_email=not args.no_link_by_email,
            create_users=not args.no_create_users,
        )
        return entry
    if not args.subject or not args.resource or not args.scope:
        raise CommandError("a workload issuer needs --subject (repeatable), --resource and --scope")
    rule = {"resource": args.resource, "scopes": args.scope, "identity": args.identity}
    entry.update(
        audience=args.audience,
        subjects={pattern: rule for pattern in args.subject},
        single_use=not args.reusable,
    )
    return entry


def _validated(entry: dict[str, Any], settings: AuthSettings) -> TrustedIssuerConfig:
    try:  # exactly the rules of an AUTH_TRUSTED_ISSUERS entry
        config = TrustedIssuerConfig.model_validate(entry)
        check_transport(config, own_issuer_on_loopback=settings.is_local)
    except ValidationError as exc:
        raise CommandError(
            f"{entry['issuer']}: {first_problem(exc, TrustedIssuerConfig, 'a trusted issuer')}"
        ) from None
    except ValueError as exc:
        raise CommandError(f"{entry['issuer']}: {exc}") from None
    return config


async def add_issuer(args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        config = _validated(_entry(args), settings)
        row = await session.get(TrustedIssuer, config.issuer) or TrustedIssuer(
            issuer=config.issuer, created_at=now()
        )
        pins = dict(row.config.get("pinned_users", {})) if row.config else {}
        row.config = {**config.model_dump(mode="json", exclude_none=True), "pinned_users": pins}
        session.add(row)
        await session.commit()
    print(f"trusted issuer {config.issuer}: {config.kind}")


async def pin_user(args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        row = await session.get(TrustedIssuer, args.issuer)
        if row is None:
            raise CommandError(
                f"no issuer {args.issuer} was added with the CLI "
                "(for one in AUTH_TRUSTED_ISSUERS: set its pinned_users there)"
            )
        if await session.get(User, args.user_id) is None:
            raise CommandError(f"no user {args.user_id}")
        config = _validated(
            {
                **row.config,
                "pinned_users": {**row.config.get("pinned_users", {}), args.claim_value: args.user_id},
            },
            settings,
        )
        if config.kind != "enterprise-idp":
            raise CommandError("pins map an enterprise IdP's users; workload issuers name machine identities")
        row.config = config.model_dump(mode="json", exclude_none=True)
        await session.commit()
    print(f"{args.claim_value} at {args.issuer} is user {args.user_id}")


async def list_issuers(_args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        added = (await session.scalars(select(TrustedIssuer))).all()
    configured = {config.issuer for config in settings.auth_trusted_issuers}
    stored = {row.issuer for row in added}
    rows = []
    for config in sorted(merged(added, settings.auth_trusted_issuers).values(), key=lambda c: c.issuer):
        source = "AUTH_TRUSTED_ISSUERS" if config.issuer in configured else "database"
        if config.issuer in configured and config.issuer in stored:
            source += " (over database)"
        keys = "static jwks" if config.jwks else config.jwks_uri or "discovery"
        rules = (
            ", ".join(f"{pattern} -> {rule.resource}" for pattern, rule in config.subjects.items())
            if config.kind == "workload"
            else f"user by {config.user_claim}; {len(config.pinned_users)} pinned"
        )
        rows.append([config.issuer, config.kind, source, keys, rules])
    print(table(rows, ["ISSUER", "KIND", "SOURCE", "KEYS", "RULES"]))
    if configured:
        print(
            "note: AUTH_TRUSTED_ISSUERS rows come from this shell's environment, not necessarily the running "
            "service's; rows from database are shared by every replica",
            file=sys.stderr,
        )


async def remove_issuer(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        result = await session.execute(delete(TrustedIssuer).where(TrustedIssuer.issuer == args.issuer))
        await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise CommandError(
            f"no issuer {args.issuer} was added with the CLI (configured ones come from AUTH_TRUSTED_ISSUERS)"
        )
    print(f"removed {args.issuer}")
