"""Rows the token endpoint redeems, written straight into PostgreSQL with COPY (asyncpg).

Seeding through the browser flow would measure our browser simulation; these rows are what that flow
leaves behind, built from the service's own models (column names and order), hashing
(`hash_secret`) and PKCE (`s256_challenge`), so the endpoint treats them exactly like real ones.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import asyncpg
from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase

from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import (
    AuthorizationCode,
    Client,
    Consent,
    Grant,
    RefreshToken,
    UpstreamIdentity,
    User,
)
from mcp_auth_server.oauth.rfc7636_pkce import s256_challenge

REDIRECT_URI = "http://127.0.0.1:33418/callback"
SCOPES = ["mcp:tools", "offline_access"]
DAY = 86_400


def asyncpg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def copy_rows(
    connection: asyncpg.Connection, model: type[DeclarativeBase], rows: Iterable[dict[str, Any]]
) -> None:
    """COPY `rows` (dicts by column name; absent columns are NULL) into `model`'s table.

    Only the columns the database has are written, so an older schema (bench/token_compare.py runs earlier
    commits, migrated by their own code) takes the same rows without the columns added since."""
    table: Any = model.__table__
    present = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table.name
    )
    existing = {record["column_name"] for record in present}
    columns = [column.name for column in table.columns if column.name in existing]
    json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}

    def records() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            yield tuple(
                json.dumps(row[name]) if name in json_columns and name in row else row.get(name)
                for name in columns
            )

    await connection.copy_records_to_table(table.name, records=records(), columns=columns)


@dataclass(frozen=True)
class Population:
    """Users (each with a `dev` upstream identity) and public DCR clients that grants and codes belong to."""

    users: list[str]
    clients: list[str]


async def seed_population(
    connection: asyncpg.Connection, users: int, clients: int, resource: str
) -> Population:
    """Users (with their dev identity), public clients, and each user's consent for the client their
    grants and codes will name (index i pairs user i % users with client i % clients): without the
    consent the credential policy would refuse every refresh and redemption."""
    now = int(time.time())
    user_ids = [str(uuid.uuid4()) for _ in range(users)]
    client_ids = [new_secret(16) for _ in range(clients)]
    await copy_rows(
        connection,
        User,
        (
            {"id": u, "login": f"user{i}", "name": f"User {i}", "created_at": now}
            for i, u in enumerate(user_ids)
        ),
    )
    # checked_at an hour ago: a refresh rechecks the upstream, as it does for a client refreshing when its
    # 15-minute access token expires (AUTH_UPSTREAM_RECHECK_SECONDS is 300). The dev upstream answers at once.
    await copy_rows(
        connection,
        UpstreamIdentity,
        (
            {
                "id": str(uuid.uuid4()),
                "user_id": u,
                "provider": "dev",
                "subject": f"user{i}",
                "checked_at": now - 3600,
                "updated_at": now,
            }
            for i, u in enumerate(user_ids)
        ),
    )
    await copy_rows(
        connection,
        Client,
        (
            {
                "client_id": c,
                "client_secret_expires_at": 0,
                "client_name": "bench client",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "origin": "dcr",
                "allowed_resources": [],
                "allowed_scopes": [],
                "metadata_document": {},
                "created_at": now,
            }
            for c in client_ids
        ),
    )
    pairs = math.lcm(users, clients)
    await copy_rows(
        connection,
        Consent,
        (
            {
                "id": i + 1,  # COPY sends every column: no sequence fills the key
                "user_id": user_ids[i % users],
                "client_id": client_ids[i % clients],
                "resource": resource,
                "scopes": SCOPES,
                "created_at": now,
                "expires_at": now + 90 * DAY,
            }
            for i in range(pairs)
        ),
    )
    return Population(user_ids, client_ids)


@dataclass(frozen=True)
class Redeemable:
    client_id: str
    secret: str  # the refresh token, or the authorization code
    verifier: str = ""  # PKCE, for codes


async def seed_grants(
    connection: asyncpg.Connection,
    population: Population,
    resource: str,
    count: int,
    keep: int,
) -> list[Redeemable]:
    """`count` live grants, each with one unused refresh token; returns `keep` of the tokens in clear,
    spread evenly over the whole population (the rest are stored as hashes of secrets nobody keeps)."""
    now = int(time.time())
    every = max(1, count // max(keep, 1))
    kept: list[Redeemable] = []
    grants: list[tuple[str, str, str]] = []  # (grant id, client, token hash)

    def grant_rows() -> Iterator[dict[str, Any]]:
        for index in range(count):
            client = population.clients[index % len(population.clients)]
            grant_id = str(uuid.uuid4())
            token = new_secret()
            if index % every == 0 and len(kept) < keep:
                kept.append(Redeemable(client, token))
            grants.append((grant_id, client, hash_secret(token)))
            yield {
                "id": grant_id,
                "user_id": population.users[index % len(population.users)],
                "client_id": client,
                "resource": resource,
                "scopes": SCOPES,
                "auth_time": now - 3600,
                "created_at": now - 3600,
                "expires_at": now + 30 * DAY,
                "last_used_at": now - 3600,
                "generation": 1,  # each family's newest refresh token (seeded below) is generation 1
            }

    await copy_rows(connection, Grant, grant_rows())
    await copy_rows(
        connection,
        RefreshToken,
        (
            {
                "token_hash": token_hash,
                "grant_id": grant_id,
                "generation": 1,
                "scopes": SCOPES,
                "created_at": now - 3600,
                "grace_used": False,
            }
            for grant_id, _client, token_hash in grants
        ),
    )
    return kept


async def seed_codes(
    connection: asyncpg.Connection, population: Population, resource: str, count: int, ttl: int
) -> list[Redeemable]:
    """`count` unredeemed authorization codes with known PKCE verifiers, as /authorize leaves them.

    `ttl` outlives the benchmark (the service's own codes live AUTH_CODE_TTL, 60 s by default)."""
    now = int(time.time())
    issued = []
    rows = []
    for index in range(count):
        client = population.clients[index % len(population.clients)]
        code, verifier = new_secret(), secrets.token_urlsafe(48)
        issued.append(Redeemable(client, code, verifier))
        rows.append(
            {
                "code_hash": hash_secret(code),
                "client_id": client,
                "user_id": population.users[index % len(population.users)],
                "redirect_uri": REDIRECT_URI,
                "code_challenge": s256_challenge(verifier),
                "resource": resource,
                "scopes": SCOPES,
                "auth_time": now,
                "created_at": now,
                "expires_at": now + ttl,
            }
        )
    await copy_rows(connection, AuthorizationCode, rows)
    return issued


async def connect(sqlalchemy_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_url(sqlalchemy_url), timeout=10)


def form(fields: Mapping[str, str] | Sequence[tuple[str, str]]) -> bytes:
    return urlencode(fields).encode()
