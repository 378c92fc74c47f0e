"""Signing in with GitHub through the stand-in: identity, allow-lists, failures, and the re-check.

Users are keyed by GitHub's numeric id (a login can be renamed and re-registered); the email is
the primary verified one; allow-lists (users, orgs, `org/team`) refuse with a 403 page, an
`access_denied` for the client (RFC 6749 §4.1.2.1) and an audit event; a failing GitHub gives a
503 page and `temporarily_unavailable`, never a 500; and a refresh re-asks GitHub, so a user
removed from the org, or who revoked the app, loses access (RFC 6749 §10.4, RFC 9700 §4.14).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import update

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Grant, UpstreamIdentity
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Page
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import Email, FailureMode, RouteGroup

from ..conftest import ISSUER
from ..flow import (
    CALLBACK,
    Database,
    GitHubService,
    all_rows,
    assert_oauth_error,
    audit_events,
    browser_for,
    execute,
    github_service,
    github_tokens,
    new_request,
    query,
    refresh,
    register,
    to_github_callback,
    token_claims,
)

RECHECK = 300  # AUTH_UPSTREAM_RECHECK_SECONDS' default


def client_answer(arrival: Page | Arrival) -> dict[str, str]:
    """The answer the browser carried back to the client's redirect URI (RFC 6749 §4.1.2.1)."""
    assert isinstance(arrival, Arrival), arrival
    assert arrival.url.startswith(CALLBACK + "?"), arrival.url
    return query(arrival.url)


async def refused_sign_in(service: GitHubService, login: str) -> tuple[dict[str, str], str, str]:
    registered = await register(service.client)
    request = new_request(registered["client_id"])
    browser = browser_for(service.client)
    arrival = await browser.open(await to_github_callback(service, browser, request.url(), login))
    return client_answer(arrival), request.state, str(registered["client_id"])


async def checked_long_ago(database: Database) -> None:
    await execute(database, update(UpstreamIdentity).values(checked_at=now() - RECHECK - 1))


def requested_scopes(github: GitHubStandIn) -> set[str]:
    [authorize] = github.state.requests_to("/login/oauth/authorize")
    return set(authorize.query["scope"].split())


async def test_user_is_keyed_by_github_numeric_id_so_a_renamed_login_is_the_same_user(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("octocat")
    async with github_service(make_settings, github) as service:
        before = await token_claims(service.client, (await github_tokens(service, "octocat")).access_token)
        renamed = github.state.users.pop("octocat")
        renamed.login = "octo-renamed"
        github.state.users["octo-renamed"] = renamed
        github.state.add_user("octocat")  # someone else registers the freed login

        after = await token_claims(
            service.client, (await github_tokens(service, "octo-renamed")).access_token
        )
        squatter = await token_claims(service.client, (await github_tokens(service, "octocat")).access_token)
    assert after["sub"] == before["sub"]
    assert after["preferred_username"] == "octo-renamed"
    assert squatter["sub"] != before["sub"]


async def test_email_is_the_primary_verified_one(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user(
        "mailer",
        email="public@example.com",
        emails=[Email("secondary@example.com", verified=True), Email("primary@example.com", primary=True)],
    )
    github.state.add_user(
        "unverified",
        emails=[Email("claimed@example.com", primary=True, verified=False), Email("other@example.com")],
    )
    async with github_service(make_settings, github) as service:
        mailer = await token_claims(service.client, (await github_tokens(service, "mailer")).access_token)
        unverified = await token_claims(
            service.client, (await github_tokens(service, "unverified")).access_token
        )
    assert mailer["email"] == "primary@example.com"
    assert "email" not in unverified  # an unverified address is nobody's identity


@pytest.mark.parametrize(
    ("allow_lists", "admitted", "refused"),
    [
        ({"auth_allowed_users": ["Alice"]}, "alice", "mallory"),
        ({"auth_allowed_orgs": ["acme"]}, "alice", "mallory"),
        ({"auth_allowed_teams": ["acme/core"]}, "alice", "mallory"),
    ],
    ids=["users", "orgs", "teams"],
)
async def test_user_outside_the_allow_lists_is_sent_back_to_the_client_with_access_denied(
    make_settings: Callable[..., AuthSettings],
    github: GitHubStandIn,
    database: Database,
    allow_lists: dict[str, list[str]],
    admitted: str,
    refused: str,
) -> None:
    github.state.add_user("alice", teams=["acme/core"])
    github.state.add_user("mallory", orgs=["evil-corp"], teams=["acme-fan-club/core", "evil-corp/core"])
    async with github_service(make_settings, github, **allow_lists) as service:
        answer, state, client_id = await refused_sign_in(service, refused)
        assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", state, ISSUER)
        assert "code" not in answer
        [event] = await audit_events(database, "sign_in_refused", client_id)
        assert refused in event.details["reason"]
        assert (await github_tokens(service, admitted)).access_token  # the control


async def test_read_org_is_requested_only_when_orgs_or_teams_are_allow_listed(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("alice", teams=["acme/core"])
    for allow_lists, wants_org in (
        ({}, False),
        ({"auth_allowed_users": ["alice"]}, False),
        ({"auth_allowed_orgs": ["acme"]}, True),
        ({"auth_allowed_teams": ["acme/core"]}, True),
    ):
        github.state.requests.clear()
        async with github_service(make_settings, github, **allow_lists) as service:
            await github_tokens(service, "alice")
        assert ("read:org" in requested_scopes(github)) is wants_org, allow_lists


async def test_user_who_cancels_at_github_is_sent_back_to_the_client_with_access_denied(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("alice")
    async with github_service(make_settings, github) as service:
        registered = await register(service.client)
        request = new_request(registered["client_id"])
        browser = browser_for(service.client)
        consent = await browser.open(request.url())
        assert isinstance(consent, Page)
        at_github = await browser.submit(consent, {"decision": "approve"})
        assert isinstance(at_github, Page)  # GitHub's own sign-in form (no auto login)
        # RFC 6749 §4.1.2.1: a client waiting on its loopback callback hears at once, with state and iss.
        answer = client_answer(await browser.submit(at_github, {"decision": "cancel"}))
        assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", request.state, ISSUER)
        assert "code" not in answer


FAILURES = [
    ("oauth", "5xx"),
    ("oauth", "junk"),
    ("api", "5xx"),
    ("api", "junk"),
    ("oauth", "timeout"),
    ("api", "timeout"),
]


@pytest.mark.parametrize(("group", "mode"), FAILURES, ids=[f"{g}_{m}" for g, m in FAILURES])
async def test_github_failure_during_sign_in_sends_the_client_temporarily_unavailable(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, group: RouteGroup, mode: FailureMode
) -> None:
    github.state.add_user("alice")
    github.state.timeout_seconds = 3.0  # longer than the auth service waits here
    # The shipped wait is 10 s (AUTH_UPSTREAM_TIMEOUT_SECONDS); half a second keeps this fast.
    async with github_service(make_settings, github, auth_upstream_timeout_seconds=0.5) as service:
        registered = await register(service.client)
        request = new_request(registered["client_id"])
        browser = browser_for(service.client)
        callback = await to_github_callback(service, browser, request.url(), "alice")
        github.state.fail(group, mode)
        started = time.monotonic()
        answer = client_answer(await browser.open(callback))
        assert time.monotonic() - started < 2.0  # it gave up; it did not wait for the 504
    assert (answer["error"], answer["state"], answer["iss"]) == (
        "temporarily_unavailable",
        request.state,
        ISSUER,
    )


def test_shipped_upstream_timeout_is_at_most_ten_seconds() -> None:
    assert AuthSettings.model_fields["auth_upstream_timeout_seconds"].default <= 10


async def test_user_removed_from_the_allowed_org_loses_access_at_the_next_refresh(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    github.state.add_user("leaver", orgs=["acme"])
    async with github_service(make_settings, github, auth_allowed_orgs=["acme"]) as service:
        tokens = await github_tokens(service, "leaver")
        github.state.users["leaver"].orgs = []
        # Within AUTH_UPSTREAM_RECHECK_SECONDS the earlier answer is trusted...
        cached = await refresh(service.client, tokens.client, tokens.refresh_token)
        assert cached.status_code == 200, cached.text
        # ...after it, GitHub is asked again and the grant ends.
        await checked_long_ago(database)
        response = await refresh(service.client, tokens.client, cached.json()["refresh_token"])
        assert_oauth_error(response, "invalid_grant")
    [grant] = await all_rows(database, Grant, Grant.client_id == tokens.client["client_id"])
    assert grant.revoked_reason == "upstream_access_lost"
    assert await audit_events(database, "upstream_access_lost")  # user-wide: every grant ended


async def test_user_who_revoked_the_app_at_github_loses_access_at_the_next_refresh(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    github.state.add_user("revoker")
    async with github_service(make_settings, github) as service:
        tokens = await github_tokens(service, "revoker")
        assert github.state.revoke_tokens("revoker") == 1
        await checked_long_ago(database)
        assert_oauth_error(
            await refresh(service.client, tokens.client, tokens.refresh_token), "invalid_grant"
        )
    [grant] = await all_rows(database, Grant, Grant.client_id == tokens.client["client_id"])
    assert grant.revoked_reason == "upstream_access_lost"


async def test_github_outage_at_refresh_is_temporarily_unavailable_and_keeps_the_grant(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    github.state.add_user("patient", orgs=["acme"])
    async with github_service(make_settings, github, auth_allowed_orgs=["acme"]) as service:
        tokens = await github_tokens(service, "patient")
        await checked_long_ago(database)
        github.state.fail("api", "5xx")
        outage = await refresh(service.client, tokens.client, tokens.refresh_token)
        assert_oauth_error(outage, "temporarily_unavailable", 503)
        github.state.recover()
        # Nothing was rotated or revoked by the failed attempt: the same token works now.
        assert (await refresh(service.client, tokens.client, tokens.refresh_token)).status_code == 200


async def test_signed_in_github_user_returning_gets_a_code_without_another_github_round_trip(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("returning")
    async with github_service(make_settings, github) as service:
        tokens = await github_tokens(service, "returning")
        github.state.requests.clear()
        browser = browser_for(service.client)
        # A loopback client always shows the page again (RFC 8252 §8.6); approving needs no GitHub.
        page = await browser.open(new_request(tokens.client["client_id"]).url())
        assert isinstance(page, Page)
        assert "approved this application before" in page.text
        arrival = await browser.submit(page, {"decision": "approve"})
        assert isinstance(arrival, Arrival)
        assert "code" in query(arrival.url)
        assert github.state.requests == []
