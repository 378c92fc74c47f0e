"""What a user has granted, as they think of it: one row per application and MCP server.

A client that signs in again gets a new grant for the same resource; the user sees one row for
the pair (scopes united, first granted, last used), and revoking it ends every grant of the pair,
with their refresh-token families, and forgets the remembered consent, so the application must
ask again on the consent page rather than get a new code silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client, Consent, Grant
from mcp_auth_server.store.revocation import forget_consent, revoke_grants
from mcp_auth_server.store.standings import ConsentStanding


@dataclass(frozen=True)
class HeldGrant:
    """One of the user's unrevoked, unexpired grants, with its client and the consent it stands on."""

    grant: Grant
    client: Client
    consent: ConsentStanding | None


@dataclass
class ConnectedResource:
    """One MCP server an application may use for the user, across the grants of that pair."""

    resource: str
    scopes: list[str]
    granted_at: int
    last_used_at: int | None
    grant_ids: list[str] = field(default_factory=list)
    key_bound: bool = False  # some grant's tokens are bound to the application's DPoP key (RFC 9449)


@dataclass
class ConnectedApp:
    client_id: str
    client_name: str | None
    resources: list[ConnectedResource] = field(default_factory=list)


async def held_grants(session: AsyncSession, user_id: str) -> list[HeldGrant]:
    """The user's unrevoked, unexpired grants, most recently granted first."""
    rows = (
        await session.execute(
            select(Grant, Client, Consent)
            .join(Client, Grant.client_id == Client.client_id)
            .outerjoin(
                Consent,
                and_(
                    Consent.user_id == Grant.user_id,
                    Consent.client_id == Grant.client_id,
                    Consent.resource == Grant.resource,
                ),
            )
            .where(Grant.user_id == user_id, Grant.revoked_at.is_(None), Grant.expires_at > now())
            .order_by(Grant.created_at.desc())
        )
    ).all()
    return [
        HeldGrant(
            grant,
            client,
            None if consent is None else ConsentStanding(frozenset(consent.scopes), consent.expires_at),
        )
        for grant, client, consent in rows
    ]


def by_application(held: Iterable[HeldGrant]) -> list[ConnectedApp]:
    """Grants grouped by application, then by MCP server (scopes united, first granted, last used)."""
    apps: dict[str, ConnectedApp] = {}
    for entry in held:
        grant = entry.grant
        app = apps.setdefault(grant.client_id, ConnectedApp(grant.client_id, entry.client.client_name))
        connected = next((r for r in app.resources if r.resource == grant.resource), None)
        if connected is None:
            connected = ConnectedResource(grant.resource, [], grant.created_at, grant.last_used_at)
            app.resources.append(connected)
        connected.scopes = sorted(set(connected.scopes) | set(grant.scopes))
        connected.granted_at = min(connected.granted_at, grant.created_at)
        connected.last_used_at = max(connected.last_used_at or 0, grant.last_used_at or 0) or None
        connected.grant_ids.append(grant.id)
        connected.key_bound = connected.key_bound or grant.dpop_jkt is not None
    return list(apps.values())


async def revoke_connection(
    session: AsyncSession, user_id: str, client_id: str, resource: str
) -> list[tuple[str, str | None]]:
    """End every live grant of this user to `client_id` for `resource`, and forget the consent behind them;
    each ended grant's id, with the DPoP key it was bound to (for the audit log)."""
    ended = await revoke_grants(
        session, "revoked_by_user", user_id=user_id, client_id=client_id, resource=resource
    )
    await forget_consent(session, user_id, client_id, resource)
    keys = {
        row.id: row.dpop_jkt
        for row in await session.execute(select(Grant.id, Grant.dpop_jkt).where(Grant.id.in_(ended)))
    }
    return [(grant_id, keys.get(grant_id)) for grant_id in ended]
