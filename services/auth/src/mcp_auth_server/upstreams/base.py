"""The contract every upstream identity provider implements.

A connector sends the browser to the provider (`login_url`), turns the provider's answer into
an `Identity` (`handle_callback`), and decides whether that identity may use the service
(`check_access`), which is asked again on refresh so a user removed upstream loses access.
`refresh` renews the provider's access token with its refresh token before a tool is given it.
`login_url` is async because an OIDC provider's endpoints come from its discovery document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class UpstreamTokens:
    """The provider's tokens: stored encrypted, never shared with clients or put in our tokens."""

    access_token: str
    refresh_token: str | None = None
    expires_at: int | None = None
    scopes: str | None = None


@dataclass(frozen=True)
class Identity:
    provider: str
    subject: str  # the provider's stable id (GitHub's numeric id, an OIDC `sub`), never a login
    login: str | None = None
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None
    tokens: UpstreamTokens | None = None
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UpstreamRequest:
    """Per-sign-in secrets the connector needs again at the callback (stored encrypted)."""

    state: str
    callback_url: str
    code_verifier: str
    nonce: str


class AccessDenied(Exception):
    """The provider vouched for the user, but the allow-lists do not admit them."""


class UpstreamUnavailable(Exception):
    """The provider failed (5xx, timeout, malformed answer); worth retrying later."""


class UpstreamRejected(Exception):
    """The provider refused the sign-in (the user declined, a bad code, a revoked token)."""


class Connector(Protocol):
    name: str
    display_name: str

    async def login_url(self, request: UpstreamRequest) -> str:
        """Where to send the browser; UpstreamUnavailable if the provider cannot be discovered."""
        ...

    async def handle_callback(self, params: Mapping[str, str], request: UpstreamRequest) -> Identity:
        """The identity the provider's answer names; `params`: the callback's query (or form) parameters."""
        ...

    async def check_access(self, identity: Identity) -> None:
        """Raise AccessDenied if the allow-lists refuse it, UpstreamRejected if its token is dead."""
        ...

    async def refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        """Fresh tokens (RFC 6749 §6), or `tokens` unchanged when the provider's never expire.

        UpstreamRejected if the provider no longer honours the refresh token.
        """
        ...
