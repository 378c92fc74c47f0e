"""The question every credential path asks the policy, and the paths that ask it."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from mcp_auth_server.store.standings import ClientStanding, ConsentStanding, GrantStanding, UserStanding


class Path(enum.Enum):
    """The ways to obtain or use a credential; each is a row of the cross-path matrix in the tests."""

    AUTHORIZE_SILENTLY = "authorize with a live session and remembered consent"
    CONSENT_APPROVAL = "consent approval"
    CODE_REDEMPTION = "authorization code redemption"
    REFRESH = "refresh"
    CLIENT_CREDENTIALS = "client credentials"
    TOKEN_EXCHANGE = "token exchange"
    ID_JAG = "identity assertion grant from an enterprise IdP"
    WORKLOAD = "workload identity assertion"
    INTROSPECTION = "introspection"
    CONNECTED_APPS = "the connected-applications page"


@dataclass(frozen=True)
class Question:
    """May `user` (None: the client itself) hold, through `client`, a credential for `resource` with `scopes`?

    `grant` is the grant the credential belongs to, where one exists (refresh, an access token);
    `consent` is the user's remembered consent for this client and resource, None if there is none.
    """

    path: Path
    client: ClientStanding
    resource: str
    scopes: Sequence[str]
    user: UserStanding | None = None
    grant: GrantStanding | None = None
    consent: ConsentStanding | None = None
