"""`mcp-auth keys rotate/list/retire`: the signing keys and their life.

`rotate` publishes a new key at once and lets it sign only after `--activation-delay`, longer
than resource servers cache the JWKS (5 minutes), so no server ever meets an unknown `kid`.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from mcp_auth_server.cli.database import command_session, table, when
from mcp_auth_server.cli.errors import CommandError
from mcp_auth_server.clock import now
from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.models import SigningKey
from mcp_auth_server.store.signing_keys import add_key, key_state

DEFAULT_ACTIVATION_DELAY = 600


def register(commands: Any) -> None:
    group = commands.add_parser("keys", help="token signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    rotate = group.add_parser("rotate", help="add a key: published now, signing after a delay")
    rotate.add_argument("--algorithm", choices=["ES256", "RS256"], help="default: AUTH_SIGNING_ALG")
    rotate.add_argument("--activation-delay", type=int, default=DEFAULT_ACTIVATION_DELAY, metavar="SECONDS")
    rotate.set_defaults(handler=rotate_key)
    group.add_parser("list", help="list keys with their state").set_defaults(handler=list_keys)
    retire = group.add_parser(
        "retire", help="stop a key signing now (it stays published until its tokens expire)"
    )
    retire.add_argument("kid")
    retire.set_defaults(handler=retire_key)


async def rotate_key(args: argparse.Namespace) -> None:
    if args.activation_delay < 0:
        raise CommandError("--activation-delay must be zero or more seconds")
    async with command_session() as (settings, session):
        box = SecretBox(settings.secret_key, "signing-key")
        key = await add_key(session, box, args.algorithm or settings.auth_signing_alg, args.activation_delay)
    print(f"added key {key.kid} ({key.algorithm}): published now, signs from {when(key.activates_at)} UTC")


async def list_keys(_args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        keys = (await session.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
        ttl, moment = settings.auth_access_token_ttl, now()
        rows = [
            [
                k.kid,
                k.algorithm,
                key_state(k, moment, ttl),
                when(k.created_at),
                when(k.activates_at),
                when(k.retires_at),
            ]
            for k in keys
        ]
    print(table(rows, ["KID", "ALG", "STATE", "CREATED", "SIGNS_FROM", "STOPS_SIGNING"]))


async def retire_key(args: argparse.Namespace) -> None:
    async with command_session() as (settings, session):
        key = await session.get(SigningKey, args.kid)
        if key is None:
            raise CommandError(f"no key {args.kid}")
        moment = now()
        others = (await session.scalars(select(SigningKey).where(SigningKey.kid != key.kid))).all()
        if not any(key_state(k, moment, settings.auth_access_token_ttl) == "active" for k in others):
            raise CommandError(
                f"{args.kid} is the only active key: run `mcp-auth keys rotate`, "
                "then retire it once the new key signs"
            )
        # Never postpone an end already set: a retired key must not come back into the JWKS.
        key.retires_at = moment if key.retires_at is None else min(key.retires_at, moment)
        await session.commit()
    print(f"key {args.kid} stopped signing; it stays published until its last token expires")
