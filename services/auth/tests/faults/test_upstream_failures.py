"""A slow or failing GitHub bounds every request by AUTH_UPSTREAM_TIMEOUT_SECONDS and ends in a clear error.

upstreams/test_github_sign_in.py covers each failure at sign-in (a 503 page, `temporarily_unavailable`
for the client) and a 5xx at the refresh re-check; here the timeout comes from the setting itself (1 s
instead of the shipped 10 s), and a slow or garbled GitHub at the re-check is a 503 with `Retry-After`
(RFC 6749 §5.2 error JSON) that rotates and revokes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import update

from mcp_auth_server.app import upstream_timeout
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Grant, UpstreamIdentity
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import FailureMode

from ..flow import (
    Database,
    all_rows,
    assert_oauth_error,
    browser_for,
    execute,
    github_service,
    github_tokens,
    new_request,
    query,
    refresh,
    register,
    to_github_callback,
)

TIMEOUT = 1.0  # AUTH_UPSTREAM_TIMEOUT_SECONDS for these tests
GITHUB_STALLS = 3.0  # how long the stand-in holds a request in "timeout" mode: longer than TIMEOUT
BOUND = TIMEOUT + 1.5  # the whole request, with its other upstream calls and database work


def test_the_shipped_upstream_timeout_is_the_settings_default() -> None:
    default = AuthSettings.model_fields["auth_upstream_timeout_seconds"].default
    shipped = upstream_timeout(default)  # what create_app builds from the default setting
    assert shipped.read == 10
    assert shipped.connect == 5


async def test_slow_github_at_sign_in_gives_up_after_the_configured_timeout(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("alice")
    github.state.timeout_seconds = GITHUB_STALLS
    async with github_service(make_settings, github, auth_upstream_timeout_seconds=TIMEOUT) as service:
        registered = await register(service.client)
        browser = browser_for(service.client)
        callback = await to_github_callback(
            service, browser, new_request(registered["client_id"]).url(), "alice"
        )
        github.state.fail("oauth", "timeout")
        started = time.monotonic()
        arrival = await browser.open(callback)
        elapsed = time.monotonic() - started
    assert isinstance(arrival, Arrival), arrival
    assert query(arrival.url)["error"] == "temporarily_unavailable"
    assert TIMEOUT <= elapsed < BOUND, elapsed


@pytest.mark.parametrize("mode", ["timeout", "junk"])
async def test_slow_or_garbled_github_at_the_refresh_recheck_is_503_with_retry_after_and_keeps_the_grant(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database, mode: FailureMode
) -> None:
    github.state.add_user("patient")
    github.state.timeout_seconds = GITHUB_STALLS
    async with github_service(make_settings, github, auth_upstream_timeout_seconds=TIMEOUT) as service:
        tokens = await github_tokens(service, "patient")
        await execute(database, update(UpstreamIdentity).values(checked_at=now() - 24 * 3600))
        github.state.fail("api", mode)
        started = time.monotonic()
        outage = await refresh(service.client, tokens.client, tokens.refresh_token)
        assert time.monotonic() - started < BOUND
        body = assert_oauth_error(outage, "temporarily_unavailable", 503)
        assert "GitHub" in body["error_description"]
        assert outage.headers["retry-after"].isdigit()
        github.state.recover()
        # The failed attempt rotated and revoked nothing: the same refresh token works now.
        again = await refresh(service.client, tokens.client, tokens.refresh_token)
        assert again.status_code == 200, again.text
    [grant] = await all_rows(database, Grant, Grant.client_id == tokens.client["client_id"])
    assert grant.revoked_at is None
