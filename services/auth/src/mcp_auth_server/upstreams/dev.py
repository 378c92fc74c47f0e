"""The `dev` upstream: a sign-in form that trusts any username. Loopback issuers only.

A real connector used by `make dev` and the tests, not a test hack: it goes through the same
consent, state and session machinery as GitHub. Settings refuse it on a non-loopback issuer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

from mcp_auth_server.upstreams.base import Identity, UpstreamRejected, UpstreamRequest, UpstreamTokens

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,38}$")


class DevConnector:
    name = "dev"
    display_name = "Development sign-in"

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    async def login_url(self, request: UpstreamRequest) -> str:
        return f"{self._issuer}/upstream/dev/login?{urlencode({'state': request.state})}"

    async def handle_callback(self, params: Mapping[str, str], request: UpstreamRequest) -> Identity:
        username = params.get("username", "").strip()
        if not USERNAME.match(username):
            raise UpstreamRejected("a username of letters, digits, '.', '_' or '-' is required")
        return Identity(
            provider="dev",
            subject=username.lower(),
            login=username,
            name=username,
            email=f"{username.lower()}@dev.invalid",
        )

    async def check_access(self, identity: Identity) -> None:
        return None

    async def refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        return tokens
