"""The upstream leg: the `state` we send to the identity provider, and what comes back to /callback.

Covers RFC 6749 §10.12 and RFC 9700 §4.7.1 (state is single-use, bound to the user agent, and
short-lived: CSRF and login CSRF on the redirect back), RFC 9700 §2.1 and the MCP spec's confused
deputy rule (nothing goes upstream before the user approves this client), with the dev upstream
and the GitHub stand-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.db.models import AuthorizationCode, AuthorizationRequest
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.github_standin import GitHubStandIn

from ..conftest import client_for
from ..flow import (
    GITHUB_CALLBACK,
    Database,
    all_rows,
    assert_error_page,
    browser_for,
    execute,
    github_service,
    new_request,
    register,
)


@pytest.fixture
async def victim(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(auth_app) as client:
        yield client


async def at_upstream_sign_in(client: httpx.AsyncClient) -> tuple[Browser, Page, str]:
    """Register, approve, and stop at the dev upstream's sign-in form: (browser, form page, client_id)."""
    registered = await register(client)
    browser = browser_for(client)
    consent = await browser.open(new_request(registered["client_id"]).url())
    assert isinstance(consent, Page)
    sign_in = await browser.submit(consent, {"decision": "approve"})
    assert isinstance(sign_in, Page)
    assert "state" in sign_in.forms()[0].fields
    return browser, sign_in, str(registered["client_id"])


async def codes_for(database: Database, client_id: str) -> list[AuthorizationCode]:
    return await all_rows(database, AuthorizationCode, AuthorizationCode.client_id == client_id)


async def test_replayed_upstream_state_is_refused(victim: httpx.AsyncClient, database: Database) -> None:
    browser, sign_in, client_id = await at_upstream_sign_in(victim)
    assert isinstance(await browser.submit(sign_in, {"username": "first"}), Arrival)
    replay = await browser.submit(sign_in, {"username": "mallory"})
    assert isinstance(replay, Page)
    assert replay.status_code == 400
    assert len(await codes_for(database, client_id)) == 1


async def test_upstream_state_older_than_ten_minutes_is_refused(
    victim: httpx.AsyncClient, database: Database
) -> None:
    browser, sign_in, client_id = await at_upstream_sign_in(victim)
    state = sign_in.forms()[0].fields["state"]
    [row] = await all_rows(
        database, AuthorizationRequest, AuthorizationRequest.upstream_state_hash == hash_secret(state)
    )
    assert row.expires_at - row.created_at == 600
    await execute(
        database,
        update(AuthorizationRequest)
        .where(AuthorizationRequest.id_hash == row.id_hash)
        .values(created_at=now() - 601, expires_at=now() - 1),
    )
    late = await browser.submit(sign_in, {"username": "late"})
    assert isinstance(late, Page)
    assert late.status_code == 400
    assert await codes_for(database, client_id) == []


async def test_upstream_state_presented_by_another_browser_is_refused(
    victim: httpx.AsyncClient, auth_app: FastAPI, database: Database
) -> None:
    # Login CSRF: the attacker's browser (or a link the attacker makes the victim follow) has
    # another cookie jar; the state only works in the browser that approved.
    browser, sign_in, client_id = await at_upstream_sign_in(victim)
    form = sign_in.forms()[0]
    async with client_for(auth_app) as attacker:
        await attacker.get(new_request(client_id).url())  # a binding cookie of its own
        stolen = await attacker.post(form.action, data={**form.fields, "username": "mallory"})
        assert_error_page(stolen)
    assert await codes_for(database, client_id) == []
    # The refused attempt did not burn the state for the browser it belongs to.
    assert isinstance(await browser.submit(sign_in, {"username": "rightful"}), Arrival)


@pytest.mark.parametrize("state", ["never-issued", "", None], ids=["unknown", "empty", "missing"])
async def test_upstream_state_that_was_never_issued_is_refused(
    victim: httpx.AsyncClient, state: str | None
) -> None:
    await at_upstream_sign_in(victim)  # the browser has a cookie and a request in flight
    data = {"username": "mallory"} | ({"state": state} if state is not None else {})
    assert_error_page(await victim.post("/callback", data=data))
    assert_error_page(await victim.get("/callback", params=data))


async def test_upstream_state_is_unrelated_to_the_client_state_and_the_request_id(
    victim: httpx.AsyncClient,
) -> None:
    registered = await register(victim)
    request = new_request(registered["client_id"])
    browser = browser_for(victim)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page)
    sign_in = await browser.submit(consent, {"decision": "approve"})
    assert isinstance(sign_in, Page)
    upstream_state = sign_in.forms()[0].fields["state"]
    assert upstream_state not in (request.state, consent.forms()[0].fields["request_id"])
    assert len(upstream_state) >= 43


async def test_nothing_is_sent_upstream_before_the_user_approves(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("octocat")
    async with github_service(make_settings, github) as service:
        registered = await register(service.client)
        request = new_request(registered["client_id"])
        browser = browser_for(service.client)
        consent = await browser.open(request.url())
        assert isinstance(consent, Page)
        assert github.state.requests == []  # the consent page alone sends nobody to GitHub

        denied = await browser.submit(consent, {"decision": "deny"})
        assert isinstance(denied, Arrival)
        assert github.state.requests == []

        github.state.auto_login = "octocat"
        consent = await browser.open(new_request(registered["client_id"]).url())
        assert isinstance(consent, Page)
        assert isinstance(await browser.submit(consent, {"decision": "approve"}), Arrival)
        [authorize, *_] = github.state.requests
        assert authorize.path == "/login/oauth/authorize"
        sent = authorize.query
        assert sent["state"] != request.state
        assert sent["code_challenge_method"] == "S256"  # our own leg upstream uses PKCE too
        assert sent["redirect_uri"] == GITHUB_CALLBACK
