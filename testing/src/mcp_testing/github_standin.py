"""An offline GitHub that tests and `docker compose` point the product at, like a GitHub Enterprise Server.

The product reaches it only through its configurable URLs: `GITHUB_URL` = `base_url` (web flow at the
root) and `GITHUB_API_URL` = `api_url` (`base_url + "/api/v3"`). Tests arrange and inspect `state`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from mcp_testing import github_rest_api, github_web_flow
from mcp_testing.background_server import BackgroundServer, ServedInBackground
from mcp_testing.github_state import GitHubState, RouteGroup, state_of
from mcp_testing.standin_http import RecordAndMisbehave

__all__ = ["GitHubStandIn", "GitHubState", "create_app", "github", "github_server"]

API_PREFIX = "/api/v3"


def _route_group(path: str) -> RouteGroup | None:
    if path.startswith(API_PREFIX + "/"):
        return "api"
    if path.startswith("/login/oauth/"):
        return "oauth"
    return None


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(state: GitHubState) -> Starlette:
    app = Starlette(
        routes=[
            *github_web_flow.routes,
            Mount(API_PREFIX, routes=github_rest_api.routes),
            Route("/healthz", _health),
            Route("/readyz", _health),
        ],
        middleware=[Middleware(RecordAndMisbehave, group_of=_route_group, state_of=state_of)],
    )
    app.state.github = state
    return app


class GitHubStandIn(ServedInBackground):
    """The stand-in served over real HTTP on a free loopback port, on a background thread."""

    def __init__(self, state: GitHubState | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(state or GitHubState())
        self._server = BackgroundServer(self.app, host=host)

    @property
    def state(self) -> GitHubState:
        state = self.app.state.github
        assert isinstance(state, GitHubState)
        return state

    def reset(self) -> GitHubState:
        """Serves a fresh, empty state from now on and returns it."""
        self.app.state.github = GitHubState()
        return self.state

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX


@pytest.fixture(scope="session")
def github_server() -> Iterator[GitHubStandIn]:
    """One stand-in server for the session; use `github` for a fresh state per test."""
    with GitHubStandIn() as server:
        yield server


@pytest.fixture
def github(github_server: GitHubStandIn) -> GitHubStandIn:
    """The GitHub stand-in with an empty state of this test's own."""
    github_server.reset()
    return github_server
