"""`mcp-auth users list/show/disable/enable`: the people who signed in, and offboarding them.

`disable` is offboarding without waiting for the upstream: every grant of the user ends (refresh
tokens fail, introspection and token exchange refuse their access tokens), every browser session
ends, remembered consent is forgotten, and the user cannot sign in again until `enable`.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.cli.database import command_session, grant_state, table, when
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Grant, UpstreamIdentity, User
from mcp_auth_server.store import audit
from mcp_auth_server.store.revocation import deprovision


def register(commands: Any) -> None:
    group = commands.add_parser("users", help="users who signed in; offboarding").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    group.add_parser("list", help="list users with their state and live grants").set_defaults(
        handler=list_users
    )
    show = group.add_parser("show", help="one user: identities and grants")
    show.add_argument("user", help="login or user id")
    show.set_defaults(handler=show_user)
    disable = group.add_parser("disable", help="revoke every grant and session at once and block sign-in")
    disable.add_argument("user", help="login or user id")
    disable.set_defaults(handler=disable_user)
    enable = group.add_parser("enable", help="allow a disabled user to sign in again")
    enable.add_argument("user", help="login or user id")
    enable.set_defaults(handler=enable_user)


async def list_users(_args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        live = (
            select(Grant.user_id, func.count().label("grants"))
            .where(Grant.revoked_at.is_(None), Grant.expires_at > now())
            .group_by(Grant.user_id)
            .subquery()
        )
        found = (
            await session.execute(
                select(User, live.c.grants)
                .outerjoin(live, live.c.user_id == User.id)
                .order_by(User.created_at)
            )
        ).all()
    rows = [
        [
            user.id,
            user.login or "-",
            user.email or "-",
            _state(user),
            str(grants or 0),
            when(user.last_login_at),
        ]
        for user, grants in found
    ]
    print(table(rows, ["USER", "LOGIN", "EMAIL", "STATE", "LIVE_GRANTS", "LAST_SIGN_IN"]))


async def show_user(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        user = await _find(session, args.user)
        identities = (
            await session.scalars(select(UpstreamIdentity).where(UpstreamIdentity.user_id == user.id))
        ).all()
        grants = (await session.scalars(select(Grant).where(Grant.user_id == user.id))).all()
    print(f"user        {user.id}")
    print(f"login       {user.login or '-'}")
    print(f"name        {user.name or '-'}")
    print(f"email       {user.email or '-'}")
    print(f"state       {_state(user)}")
    print(f"created     {when(user.created_at)}")
    print(f"last login  {when(user.last_login_at)}")
    for identity in identities:
        print(
            f"identity    {identity.provider}:{identity.subject} (last checked {when(identity.checked_at)})"
        )
    rows = [
        [
            g.id,
            g.client_id,
            g.resource,
            " ".join(g.scopes),
            grant_state(g),
        ]
        for g in grants
    ]
    if rows:
        print()
        print(table(rows, ["GRANT", "CLIENT", "RESOURCE", "SCOPES", "STATE"]))


async def disable_user(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        user = await _find(session, args.user)
        if user.disabled_at is None:
            user.disabled_at = now()
        ended = await deprovision(session, user.id, "user_disabled", by="operator")
        await session.commit()
    print(f"disabled {user.login or user.id}: {len(ended)} grant(s) revoked, sessions ended")


async def enable_user(args: argparse.Namespace) -> None:
    async with command_session() as (_settings, session):
        user = await _find(session, args.user)
        user.disabled_at = None
        audit.record(session, "user_enabled", user_id=user.id, by="operator")
        await session.commit()
    print(f"enabled {user.login or user.id}")


async def _find(session: AsyncSession, reference: str) -> User:
    """A user by id, else by login (logins are unique only per provider: more than one match is an error).

    The id wins outright: a login is chosen by the person (a GitHub login may be spelled like one of our
    ids), so it must never make an id ambiguous and stall offboarding."""
    by_id = await session.get(User, reference)
    if by_id is not None:
        return by_id
    found = (await session.scalars(select(User).where(User.login == reference))).all()
    if not found:
        raise CommandError(f"no user {reference}")
    if len(found) > 1:
        raise CommandError(
            f"{reference} names {len(found)} users; give the user id (see `mcp-auth users list`)"
        )
    return found[0]


def _state(user: User) -> str:
    return "disabled" if user.disabled_at is not None else "active"
