"""OAuth clients: registration, lookup and last-use tracking."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.db.models import Client
from mcp_auth_server.db.statements import Sql, Statement, columns, json_columns_of
from mcp_auth_server.store.client_cache import LAST_USE_ONLY

PUBLIC = "none"
PRIVATE_KEY_JWT = "private_key_jwt"  # authenticates with its registered keys (RFC 7523 §2.2), no secret


def new_client_id() -> str:
    return new_secret(16)


def is_public(client: Client) -> bool:
    return client.token_endpoint_auth_method == PUBLIC


def create_client(
    session: AsyncSession,
    *,
    origin: str,
    redirect_uris: list[str],
    token_endpoint_auth_method: str,
    grant_types: list[str],
    client_name: str | None = None,
    application_type: str = "web",
    metadata_document: dict[str, Any] | None = None,
    allowed_resources: list[str] | None = None,
    allowed_scopes: list[str] | None = None,
    served_resource: str | None = None,
    client_id: str | None = None,
    secret: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    workload_issuer: str | None = None,
    workload_subject: str | None = None,
) -> tuple[Client, str | None]:
    """Add a client; returns it with its secret in clear (shown once), None for public clients and
    clients that authenticate with their keys (`jwks` or `jwks_uri`).

    An operator may choose the id and secret (declarative deployments); otherwise both are random.
    """
    if token_endpoint_auth_method in (PUBLIC, PRIVATE_KEY_JWT):
        secret = None
    elif secret is None:
        secret = new_secret(32)
    client = Client(
        client_id=client_id or new_client_id(),
        client_secret_hash=hash_secret(secret) if secret else None,
        client_secret_expires_at=0,
        client_name=client_name,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        token_endpoint_auth_method=token_endpoint_auth_method,
        application_type=application_type,
        origin=origin,
        allowed_resources=allowed_resources or [],
        allowed_scopes=allowed_scopes or [],
        served_resource=served_resource,
        metadata_document=metadata_document or {},
        jwks=jwks,
        jwks_uri=jwks_uri,
        workload_issuer=workload_issuer,
        workload_subject=workload_subject,
        created_at=now(),
    )
    session.add(client)
    return client, secret


def storable_client_id(client_id: str) -> bool:
    # Anything the column cannot hold (too long, a NUL byte Postgres refuses) is simply unknown.
    return bool(client_id) and len(client_id) <= 512 and "\x00" not in client_id


async def get_client(session: AsyncSession, client_id: str) -> Client | None:
    """The client as a row of the session, to change or delete."""
    return await session.get(Client, client_id) if storable_client_id(client_id) else None


READ_CLIENT = Statement(
    f"SELECT {columns(Client)} FROM clients WHERE client_id = :client_id",
    json_columns=json_columns_of(Client),
    outside_transaction=True,
)


async def read_client(session: AsyncSession, client_id: str) -> Client | None:
    """The client, read for the request at hand (a detached copy, not a row of the session): the
    cheap lookup every token request makes (db/statements.py)."""
    if not storable_client_id(client_id):
        return None
    row = await (await Sql.of(session)).row(READ_CLIENT, client_id=client_id)
    return None if row is None else Client(**row)


async def touch(session: AsyncSession, client: Client) -> None:
    """Record use at most once a minute per client, so hot paths do not write on every call.

    The row just read says whether a minute has passed: then no statement is sent at all. The
    UPDATE keeps the condition, so replicas racing on one client still write once. The record read (it
    may be a cached one: store/client_cache.py) says so too from now on."""
    moment = now()
    if client.last_used_at is not None and client.last_used_at >= moment - 60:
        return
    await session.execute(
        update(Client)
        .where(Client.client_id == client.client_id)
        .where((Client.last_used_at.is_(None)) | (Client.last_used_at < moment - 60))
        .values(last_used_at=moment)
        .execution_options(**{LAST_USE_ONLY: True})
    )
    client.last_used_at = moment


async def find_workload_client(session: AsyncSession, issuer: str, subject: str) -> Client | None:
    """The client a workload (`subject` at the trusted workload issuer `issuer`) authenticates as."""
    statement = select(Client).where(Client.workload_issuer == issuer, Client.workload_subject == subject)
    return (await session.scalars(statement)).first()
