"""`mcp-auth grants list/revoke`: what users granted to clients, and ending it."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import or_, select

from mcp_auth_server.cli.database import command_session, grant_state, table, when
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.db.models import Client, Grant, User
from mcp_auth_server.store import audit
from mcp_auth_server.store.grants import is_live
from mcp_auth_server.store.revocation import revoke_grants


def register(commands: Any) -> None:
    group = commands.add_parser("grants", help="users' grants to clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = group.add_parser("list", help="list live grants, optionally of one user")
    listing.add_argument("--user", help="login or user id")
    listing.add_argument("--all", action="store_true", help="include revoked and expired grants")
    listing.set_defaults(handler=list_grants)
    revoke = group.add_parser("revoke", help="revoke a grant and its refresh tokens")
    revoke.add_argument("grant_id")
    revoke.set_defaults(handler=revoke_one)


async def list_grants(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        query = (
            select(Grant, User.login, Client.client_name)
            .outerjoin(User, Grant.user_id == User.id)
            .join(Client, Grant.client_id == Client.client_id)
            .order_by(Grant.created_at)
        )
        if args.user:
            query = query.where(or_(User.login == args.user, User.id == args.user))
        found = (await session.execute(query)).all()
    rows = [
        [
            g.id,
            login or g.user_id or "-",
            name or g.client_id,
            g.resource,
            " ".join(g.scopes),
            when(g.created_at),
            when(g.last_used_at),
            grant_state(g),
        ]
        for g, login, name in found
        if args.all or is_live(g)
    ]
    print(table(rows, ["GRANT", "USER", "CLIENT", "RESOURCE", "SCOPES", "GRANTED", "LAST_USED", "STATE"]))


async def revoke_one(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        grant = await session.get(Grant, args.grant_id)
        if grant is None:
            raise CommandError(f"no grant {args.grant_id}")
        await revoke_grants(session, "revoked_by_operator", grant_id=grant.id)
        audit.record(
            session,
            "grant_revoked",
            user_id=grant.user_id,
            client_id=grant.client_id,
            grant_id=grant.id,
            by="operator",
            **audit.key_binding(grant.dpop_jkt),
        )
        await session.commit()
    print(f"revoked grant {args.grant_id}")
