"""What a user has granted, as they think of it: one row per application and MCP server.

A client that signs in again gets a new grant for the same resource; the user sees one row for
the pair (scopes united, first granted, last used), and revoking it ends every grant of the pair,
with their refresh-token families, and forgets the remembered consent, so the application must
ask again on the consent page rather than get a new code silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client, Consent, Grant
from mcp_auth_server.store.grants import revoke_grant


@dataclass
class ConnectedResource:
    """One MCP server an application may use for the user, across the grants of that pair."""

    resource: str
    scopes: list[str]
    granted_at: int
    last_used_at: int | None
    grant_ids: list[str] = field(default_factory=list)


@dataclass
class ConnectedApp:
    client_id: str
    client_name: str | None
    resources: list[ConnectedResource] = field(default_factory=list)


async def connected_apps(session: AsyncSession, user_id: str) -> list[ConnectedApp]:
    """The user's live grants, by application (most recently granted first), then by MCP server."""
    moment = now()
    rows = (
        await session.execute(
            select(Grant, Client.client_name)
            .join(Client, Grant.client_id == Client.client_id)
            .where(Grant.user_id == user_id, Grant.revoked_at.is_(None), Grant.expires_at > moment)
            .order_by(Grant.created_at.desc())
        )
    ).all()
    apps: dict[str, ConnectedApp] = {}
    for grant, client_name in rows:
        app = apps.setdefault(grant.client_id, ConnectedApp(grant.client_id, client_name))
        entry = next((r for r in app.resources if r.resource == grant.resource), None)
        if entry is None:
            entry = ConnectedResource(grant.resource, [], grant.created_at, grant.last_used_at)
            app.resources.append(entry)
        entry.scopes = sorted(set(entry.scopes) | set(grant.scopes))
        entry.granted_at = min(entry.granted_at, grant.created_at)
        entry.last_used_at = max(entry.last_used_at or 0, grant.last_used_at or 0) or None
        entry.grant_ids.append(grant.id)
    return list(apps.values())


async def revoke_connection(session: AsyncSession, user_id: str, client_id: str, resource: str) -> list[str]:
    """End every live grant of this user to `client_id` for `resource`; the ids of the grants ended."""
    grant_ids = list(
        (
            await session.scalars(
                select(Grant.id).where(
                    Grant.user_id == user_id,
                    Grant.client_id == client_id,
                    Grant.resource == resource,
                    Grant.revoked_at.is_(None),
                )
            )
        ).all()
    )
    for grant_id in grant_ids:
        await revoke_grant(session, grant_id, "revoked_by_user")
    await session.execute(
        delete(Consent).where(
            Consent.user_id == user_id, Consent.client_id == client_id, Consent.resource == resource
        )
    )
    return grant_ids
