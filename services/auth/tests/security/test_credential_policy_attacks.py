"""Issue 11's findings, each reproduced as the attack it was, against the real app and the GitHub stand-in.

1. A user removed from the allow-lists kept getting codes from their live session.
2. Token exchange ignored consent, scope and revocation.
3. Introspection called a revoked grant's token active while a sibling grant of the same pair lived.
4. Loopback public clients were approved silently, on any port, even with prompt=consent.
5. GitHub allow-lists read only the first page of /user/orgs and /user/teams.
6. A user cancelling at the provider was left on our error page instead of being sent back: reproduced in
   upstreams/test_github_sign_in.py (test_user_who_cancels_at_github_is_sent_back_to_the_client_with_…)
   and, for OIDC providers, upstreams/test_oidc_sign_in.py (test_the_provider_s_refusal_sends_the_client_…).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import update

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import BrowserSession, Grant, UpstreamIdentity
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.github_standin import GitHubStandIn

from ..conftest import ISSUER, RESOURCE_A, RESOURCE_B
from ..flow import (
    CLAUDE_CALLBACK,
    AuthorizationRequest,
    Database,
    GitHubService,
    all_rows,
    approve_and_sign_in,
    assert_oauth_error,
    audit_events,
    browser_for,
    execute,
    github_service,
    new_request,
    query,
    redeem,
    refresh,
    register,
    to_github_callback,
)
from ..operator_clients import TOKEN_EXCHANGE, add_client, resource_server_client

RECHECK = 300  # AUTH_UPSTREAM_RECHECK_SECONDS' default
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REPOS = "mcp:tools github:repos offline_access"


async def upstream_check_is_due(database: Database) -> None:
    await execute(database, update(UpstreamIdentity).values(checked_at=now() - RECHECK - 1))


async def signed_in(
    service: GitHubService, login: str, redirect_uri: str = CLAUDE_CALLBACK, scope: str = REPOS, **meta: Any
) -> tuple[Browser, dict[str, Any], dict[str, Any]]:
    """A browser signed in with GitHub as `login`, its client, and the tokens of that client's first grant."""
    service.client.cookies.clear()
    registered = await register(service.client, redirect_uris=[redirect_uri], **meta)
    browser = browser_for(service.client, redirect_uri)
    request = new_request(registered["client_id"], redirect_uri=redirect_uri, scope=scope)
    arrival = await browser.open(await to_github_callback(service, browser, request.url(), login))
    assert isinstance(arrival, Arrival), arrival
    tokens = await redeem(service.client, request, query(arrival.url)["code"])
    assert tokens.status_code == 200, tokens.text
    return browser, registered, tokens.json()


async def silent_code(browser: Browser, client_id: str) -> tuple[AuthorizationRequest, str] | None:
    """A code for `client_id` without any page, or None if a page (or an error) came instead."""
    request = new_request(client_id, redirect_uri=CLAUDE_CALLBACK)
    arrival = await browser.open(request.url())
    if isinstance(arrival, Arrival) and "code" in query(arrival.url):
        return request, query(arrival.url)["code"]
    return None


async def exchange(
    http: httpx.AsyncClient, server: tuple[str, str], token: str, **extra: str
) -> httpx.Response:
    return await http.post(
        "/token",
        auth=server,
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "github",
            **extra,
        },
    )


# --- 1. deprovisioning bites on every path -------------------------------------------------------


async def test_a_user_removed_from_the_allowed_org_gets_no_code_from_the_session_they_still_have(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    github.state.add_user("leaver", orgs=["acme"])
    github.state.add_user("stayer", orgs=["acme"])
    async with github_service(make_settings, github, auth_allowed_orgs=["acme"]) as service:
        _, other_client, other_tokens = await signed_in(service, "stayer")
        browser, registered, tokens = await signed_in(service, "leaver")
        client_id = registered["client_id"]
        pending = await silent_code(browser, client_id)
        assert pending is not None  # the control: a member's session yields codes without a page

        github.state.users["leaver"].orgs = []
        await upstream_check_is_due(database)
        assert await silent_code(browser, client_id) is None  # the attack: a code from the old session
        page = await browser.open(new_request(client_id, redirect_uri=CLAUDE_CALLBACK).url())
        assert isinstance(page, Page)
        assert "You will sign in with GitHub next" in page.text  # the session is over

        # The code issued before the removal yields nothing; neither does the refresh token.
        request, code = pending
        assert_oauth_error(await redeem(service.client, request, code), "invalid_grant")
        assert_oauth_error(
            await refresh(service.client, registered, tokens["refresh_token"]), "invalid_grant"
        )
        # Approving a brand-new client sends the person to GitHub, where the allow-list refuses them.
        fresh = await register(service.client, client_name="A new client")
        consent = await browser.open(new_request(fresh["client_id"]).url())
        assert isinstance(consent, Page)
        answer = await browser_for(service.client).submit(consent, {"decision": "approve"})
        assert isinstance(answer, Arrival)
        assert query(answer.url)["error"] == "access_denied"

        # Deprovisioned at once, and audited; the other member is untouched.
        grants = await all_rows(database, Grant, Grant.client_id == client_id)
        assert grants
        assert all(grant.revoked_reason == "upstream_access_lost" for grant in grants)
        user_id = grants[0].user_id
        sessions = await all_rows(database, BrowserSession, BrowserSession.user_id == user_id)
        assert sessions
        assert all(s.revoked_at is not None for s in sessions)
        assert await audit_events(database, "upstream_access_lost")
        still = await refresh(service.client, other_client, other_tokens["refresh_token"])
        assert still.status_code == 200, still.text


# --- 2. token exchange is a consented scope of a live grant ---------------------------------------


async def test_token_exchange_refuses_a_token_without_the_upstream_token_scope(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("octo")
    async with github_service(make_settings, github) as service:
        server = await resource_server_client(service.client, RESOURCE_A)
        _, _, with_scope = await signed_in(service, "octo")
        assert (await exchange(service.client, server, with_scope["access_token"])).status_code == 200
        _, _, without = await signed_in(service, "octo", scope="mcp:tools offline_access")
        refused = assert_oauth_error(
            await exchange(service.client, server, without["access_token"]), "invalid_grant"
        )
        assert "github:repos" in refused["error_description"]


async def test_token_exchange_refuses_a_resource_that_declares_no_upstream_token_scope(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("octo")
    async with github_service(make_settings, github) as service:
        server = await resource_server_client(service.client, RESOURCE_B)  # B: "use this server's tools" only
        registered = await register(service.client, redirect_uris=[CLAUDE_CALLBACK])
        browser = browser_for(service.client, CLAUDE_CALLBACK)
        request = new_request(registered["client_id"], redirect_uri=CLAUDE_CALLBACK, resource=RESOURCE_B)
        arrival = await browser.open(await to_github_callback(service, browser, request.url(), "octo"))
        assert isinstance(arrival, Arrival)
        tokens = (await redeem(service.client, request, query(arrival.url)["code"])).json()
        assert_oauth_error(await exchange(service.client, server, tokens["access_token"]), "invalid_grant")


async def test_token_exchange_refuses_once_the_grant_is_revoked_through_its_refresh_token(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    github.state.add_user("octo")
    async with github_service(make_settings, github) as service:
        server = await resource_server_client(service.client, RESOURCE_A)
        _, registered, tokens = await signed_in(service, "octo")
        assert (await exchange(service.client, server, tokens["access_token"])).status_code == 200
        revoked = await service.client.post(
            "/revoke", data={"token": tokens["refresh_token"], "client_id": registered["client_id"]}
        )
        assert revoked.status_code == 200
        inactive = await service.client.post(
            "/introspect", auth=server, data={"token": tokens["access_token"]}
        )
        assert inactive.json() == {"active": False}
        assert_oauth_error(await exchange(service.client, server, tokens["access_token"]), "invalid_grant")


# --- 3. access tokens name their grant ----------------------------------------------------------


async def test_introspection_calls_a_revoked_grants_token_inactive_while_its_sibling_stays_active(
    auth_client: httpx.AsyncClient,
) -> None:
    """Two devices of one client id, one user, one resource: revoking one grant ends exactly its tokens."""
    server = await resource_server_client(auth_client, RESOURCE_A)
    registered = await register(auth_client)
    devices = []
    for _ in range(2):
        auth_client.cookies.clear()
        request = new_request(registered["client_id"])
        answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "two-devices")
        devices.append((await redeem(auth_client, request, answer["code"])).json())
    first, second = devices
    revoked = await auth_client.post(
        "/revoke", data={"token": first["refresh_token"], "client_id": registered["client_id"]}
    )
    assert revoked.status_code == 200
    introspect = [
        (await auth_client.post("/introspect", auth=server, data={"token": device["access_token"]})).json()
        for device in devices
    ]
    assert introspect[0] == {"active": False}
    assert introspect[1]["active"] is True
    assert (await refresh(auth_client, registered, second["refresh_token"])).status_code == 200


# --- 4. no silent approval for a client whose identity nothing assures -----------------------------


async def test_a_local_program_cannot_get_a_code_by_naming_a_loopback_client_the_user_approved(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client)  # a public client with a loopback redirect (CALLBACK)
    # Any local process can send the browser here, with its own port and PKCE challenge.
    attacker = "http://127.0.0.1:45999/callback"
    browser = browser_for(auth_client, attacker)
    await approve_and_sign_in(browser, new_request(registered["client_id"]).url(), "victim")
    for prompt in (None, "consent"):
        request = new_request(registered["client_id"], redirect_uri=attacker)  # mcp:tools offline_access
        outcome = await browser.open(request.url(prompt=prompt))
        assert isinstance(outcome, Page), outcome  # the person sees who asks, and decides
        assert "approved this application before" in outcome.text
    none = await browser.open(new_request(registered["client_id"], redirect_uri=attacker).url(prompt="none"))
    assert isinstance(none, Arrival)
    assert (query(none.url)["error"], query(none.url)["iss"]) == ("interaction_required", ISSUER)


async def test_an_https_client_with_remembered_consent_still_gets_the_page_for_prompt_consent(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client, redirect_uris=[CLAUDE_CALLBACK])
    browser = browser_for(auth_client, CLAUDE_CALLBACK)
    await approve_and_sign_in(
        browser, new_request(registered["client_id"], redirect_uri=CLAUDE_CALLBACK).url(), "claude-user"
    )
    assert await silent_code(browser, registered["client_id"]) is not None
    request = new_request(registered["client_id"], redirect_uri=CLAUDE_CALLBACK)
    assert isinstance(await browser.open(request.url(prompt="consent")), Page)


async def test_prompt_none_names_what_is_missing(auth_client: httpx.AsyncClient) -> None:
    # A pre-registered client: its errors redirect in any browser (a dynamically registered one's only in
    # the browser of someone who approved it: tests/security/test_open_redirector_attacks.py).
    client_id, _ = await add_client(
        auth_client,
        origin="preregistered",
        redirect_uris=[CLAUDE_CALLBACK],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
    )
    registered = {"client_id": client_id}
    browser = browser_for(auth_client, CLAUDE_CALLBACK)
    url = new_request(registered["client_id"], redirect_uri=CLAUDE_CALLBACK).url(prompt="none")
    signed_out = await browser.open(url)
    assert isinstance(signed_out, Arrival)
    assert query(signed_out.url)["error"] == "login_required"
    other = await register(auth_client)  # sign in through another client: a session, but no consent here
    await approve_and_sign_in(browser_for(auth_client), new_request(other["client_id"]).url(), "pat")
    no_consent = await browser.open(
        new_request(registered["client_id"], redirect_uri=CLAUDE_CALLBACK).url(prompt="none")
    )
    assert isinstance(no_consent, Arrival)
    assert query(no_consent.url)["error"] == "consent_required"


# --- 5. allow-lists read every page ------------------------------------------------------------


async def test_a_member_of_many_orgs_is_admitted_by_an_org_on_a_later_page(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    orgs = [f"club-{n:03}" for n in range(150)] + ["acme"]  # GitHub answers at most 100 per page
    teams = [f"club-{n:03}/members" for n in range(150)] + ["acme/core"]
    github.state.add_user("joiner", orgs=orgs, teams=teams)
    for allow_list in ({"auth_allowed_orgs": ["acme"]}, {"auth_allowed_teams": ["acme/core"]}):
        async with github_service(make_settings, github, **allow_list) as service:
            _, _, tokens = await signed_in(service, "joiner")
            assert tokens["access_token"]
