"""Facts about a user, a client, a grant and a consent, as one read found them: what the credential
policy (policy/credentials.py) decides on.

Each path reads these in the statement it already makes (a refresh folds them into its one locking
read, a code redemption into its `RETURNING`), so asking the policy costs no extra round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp_auth_server.db.models import Client, Consent, UpstreamIdentity, User
from mcp_auth_server.db.statements import columns


@dataclass(frozen=True)
class UserStanding:
    id: str
    disabled: bool
    identity_id: str | None  # their identity at the configured upstream, if they have one
    checked_at: int | None  # when that upstream last said they may use the service


@dataclass(frozen=True)
class ClientStanding:
    client_id: str
    grant_types: Sequence[str]
    origin: str  # dcr | cimd | preregistered | machine | resource_server
    allowed_resources: Sequence[str] = ()  # machine clients
    allowed_scopes: Sequence[str] = ()  # machine clients


@dataclass(frozen=True)
class GrantStanding:
    id: str
    revoked: bool
    expires_at: int


@dataclass(frozen=True)
class ConsentStanding:
    scopes: frozenset[str]
    expires_at: int


def client_standing(client: Client) -> ClientStanding:
    return ClientStanding(
        client_id=client.client_id,
        grant_types=tuple(client.grant_types),
        origin=client.origin,
        allowed_resources=tuple(client.allowed_resources),
        allowed_scopes=tuple(client.allowed_scopes),
    )


# The columns a read selects (under these names) to build a user's and their consent's standing.
STANDING_COLUMNS = ("disabled_at", "identity_id", "checked_at", "consent_scopes", "consent_expires_at")
# The same, read with a grant aliased `g`: its user `u`, their identity at :provider `ui`, the consent `c`.
STANDING_SELECT = ", ".join(
    [
        columns(User, "disabled_at", alias="u"),
        columns(UpstreamIdentity, "checked_at", alias="ui", identity_id="id"),
        columns(Consent, alias="c", consent_scopes="scopes", consent_expires_at="expires_at"),
    ]
)
STANDING_JOINS = (
    " LEFT JOIN users u ON u.id = g.user_id"
    " LEFT JOIN upstream_identities ui ON ui.user_id = u.id AND ui.provider = :provider"
    " LEFT JOIN consents c ON c.user_id = g.user_id AND c.client_id = g.client_id AND c.resource = g.resource"
)


def user_standing(row: dict[str, Any], user_id: str) -> UserStanding:
    return UserStanding(user_id, row["disabled_at"] is not None, row["identity_id"], row["checked_at"])


def consent_standing(row: dict[str, Any]) -> ConsentStanding | None:
    if row["consent_scopes"] is None:
        return None
    return ConsentStanding(frozenset(row["consent_scopes"]), row["consent_expires_at"])
