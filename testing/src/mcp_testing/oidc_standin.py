"""An OpenID Connect provider on 127.0.0.1 that tests point the `oidc` and `google` upstreams at.

The product reaches it only through discovery: `OIDC_ISSUER` (or `GOOGLE_ISSUER`) = `issuer`. Each
test gets a fresh state (`oidc_provider` for a generic provider, `google_provider` for the Google
flavour) on one server per session; tests arrange and inspect `state`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from mcp_testing import oidc_endpoints
from mcp_testing.background_server import BackgroundServer, ServedInBackground
from mcp_testing.oidc_state import Flavour, OidcState, state_of
from mcp_testing.standin_http import RecordAndMisbehave

__all__ = ["OidcStandIn", "OidcState", "create_app", "google_provider", "oidc_provider", "oidc_server"]


def create_app(state: OidcState) -> Starlette:
    app = Starlette(
        routes=oidc_endpoints.routes,
        middleware=[
            Middleware(RecordAndMisbehave, group_of=oidc_endpoints.route_group, state_of=state_of),
        ],
    )
    app.state.oidc = state
    return app


class OidcStandIn(ServedInBackground):
    """The stand-in served over real HTTP on a free loopback port, on a background thread."""

    def __init__(self, state: OidcState | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(state or OidcState())
        self._server = BackgroundServer(self.app, host=host)

    @property
    def state(self) -> OidcState:
        state = self.app.state.oidc
        assert isinstance(state, OidcState)
        return state

    def reset(self, flavour: Flavour = "generic") -> OidcState:
        """Serves a fresh, empty state of the given flavour from now on and returns it."""
        self.app.state.oidc = OidcState(flavour=flavour)
        return self.state

    @property
    def issuer(self) -> str:
        return self._server.base_url


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[OidcStandIn]:
    """One stand-in server for the session; use `oidc_provider` or `google_provider` per test."""
    with OidcStandIn() as server:
        yield server


@pytest.fixture
def oidc_provider(oidc_server: OidcStandIn) -> OidcStandIn:
    """A generic OIDC provider with an empty state of this test's own."""
    oidc_server.reset("generic")
    return oidc_server


@pytest.fixture
def google_provider(oidc_server: OidcStandIn) -> OidcStandIn:
    """The stand-in behaving like accounts.google.com, with an empty state of this test's own."""
    oidc_server.reset("google")
    return oidc_server
