"""A red team's attacks on the credential policy (issue 11), each reproduced against the real app.

Every test is named after the attack; each failed on the commit it was written against.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mcp_auth_server.cli import main as mcp_auth
from mcp_auth_server.db.models import Grant, User
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.upstreams.base import Connector, Identity, UpstreamRequest, UpstreamTokens
from mcp_testing.browser import Arrival, Page
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.oidc_standin import OidcStandIn

from ..conftest import ISSUER
from ..flow import (
    CLAUDE_CALLBACK,
    Database,
    GitHubService,
    all_rows,
    approve_and_sign_in,
    assert_oauth_error,
    browser_for,
    github_service,
    github_tokens,
    new_request,
    query,
    redeem,
    refresh,
    register,
    token_claims,
)
from ..upstreams.oidc_flow import (
    expire_upstream_token,
    forget_upstream_check,
    oidc_service,
    tokens_after_sign_in,
)
from .test_credential_policy_attacks import upstream_check_is_due
from .test_cross_path_matrix import APPS, Person, browser, cli_environment, grant_of, new_client


class Rendezvous:
    """The real connector, whose allow-list checks wait until `parties` requests are asking at once.

    Nothing is faked: every answer is the GitHub stand-in's. The wait only forces the interleaving a
    busy server produces by chance (two requests of one user in flight while GitHub is asked).
    """

    def __init__(self, real: Connector, parties: int) -> None:
        self._real = real
        self._parties = parties
        self._arrived = 0
        self._all_here = asyncio.Event()
        self.name = real.name
        self.display_name = real.display_name

    async def login_url(self, request: UpstreamRequest) -> str:
        return await self._real.login_url(request)

    async def handle_callback(self, params: Mapping[str, str], request: UpstreamRequest) -> Identity:
        return await self._real.handle_callback(params, request)

    async def check_access(self, identity: Identity) -> None:
        self._arrived += 1
        if self._arrived >= self._parties:
            self._all_here.set()
        await asyncio.wait_for(self._all_here.wait(), timeout=10)
        await self._real.check_access(identity)

    async def refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        return await self._real.refresh(tokens)


@contextlib.contextmanager
def upstream_wrapped(service: GitHubService, wrap: Callable[[Connector], Connector]) -> Any:
    """The service's own connector, wrapped by `wrap` for the block."""
    runtime = service.app.state.runtime
    real = runtime.upstream
    runtime.upstream = wrap(real)
    try:
        yield
    finally:
        runtime.upstream = real


@contextlib.asynccontextmanager
async def member_with_two_grants(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> AsyncIterator[tuple[GitHubService, Person, list[tuple[dict[str, Any], dict[str, Any]]]]]:
    login = f"member-{secrets.token_hex(3)}"
    github.state.add_user(login, orgs=["acme"])
    github.state.auto_login = login
    async with github_service(make_settings, github, auth_allowed_orgs=["acme"]) as service:
        person = browser(service)
        person.login = login
        try:
            grants = []
            for name in ("Desktop", "Code"):
                client = await new_client(service, name)
                grants.append((client, await grant_of(service, person, client)))
            yield service, person, grants
        finally:
            await person.http.aclose()


# --- deprovisioning under concurrency --------------------------------------------------------------


async def test_two_refreshes_of_a_removed_user_in_flight_at_once_do_not_deadlock_into_a_500(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    """Each refresh locks its own grant, then (finding the user removed) revokes ALL the user's grants:
    two of them at once wait on each other's grant row. Both must answer invalid_grant, not crash."""
    async with member_with_two_grants(make_settings, github) as (service, person, grants):
        github.state.users[person.login].orgs = []
        await upstream_check_is_due(database)
        with upstream_wrapped(service, lambda real: Rendezvous(real, 2)):
            answers = await asyncio.gather(
                *(refresh(service.client, client, tokens["refresh_token"]) for client, tokens in grants),
                return_exceptions=True,
            )
        for answer in answers:
            assert isinstance(answer, httpx.Response), repr(answer)
            assert answer.status_code != 500, answer.text
        for answer in answers:
            assert isinstance(answer, httpx.Response)
            if answer.status_code == 400:
                assert_oauth_error(answer, "invalid_grant")
            else:  # the loser of a conflict may be told to retry, never handed tokens
                assert_oauth_error(answer, "temporarily_unavailable", 503)
        ended = await all_rows(
            database, Grant, Grant.client_id.in_([client["client_id"] for client, _ in grants])
        )
        assert ended
        assert all(grant.revoked_reason == "upstream_access_lost" for grant in ended)


# --- silent approval --------------------------------------------------------------------------------


async def test_prompt_listing_consent_among_other_values_still_shows_the_page(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn
) -> None:
    """OIDC Core §3.1.2.1: `prompt` is a space-delimited list. `login consent` asks for consent too."""
    async with member_with_two_grants(make_settings, github) as (_service, person, grants):
        client, _ = grants[0]
        silent = await person.browser.open(
            new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK).url()
        )
        assert isinstance(silent, Arrival)  # the control: remembered consent, https, no prompt
        for prompt in ("consent login", "login consent", "select_account consent"):
            request = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
            outcome = await person.browser.open(request.url(prompt=prompt))
            assert isinstance(outcome, Page), (prompt, outcome)
        # `none` with anything else is an error (and never a code): "show no page, but ask consent".
        request = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
        mixed = await person.browser.open(request.url(prompt="none consent"))
        assert isinstance(mixed, Arrival), mixed
        assert "code" not in query(mixed.url)
        assert query(mixed.url)["error"] == "invalid_request"


# --- offboarding ----------------------------------------------------------------------------------


async def test_a_login_spelled_like_a_user_id_does_not_shield_that_user_from_disable(
    make_settings: Callable[..., AuthSettings],
    github: GitHubStandIn,
    database: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A user about to be offboarded learns their id (the `sub` of their own tokens) and signs in with a
    second account whose login is that id (a valid GitHub login). `users disable <id>` must still work."""
    github.state.add_user("leaver")
    async with github_service(make_settings, github) as service:
        tokens = await github_tokens(service, "leaver")
        user_id = (await token_claims(service.client, tokens.access_token))["sub"]
        github.state.add_user(user_id)  # e.g. 3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b: letters, digits, hyphens
        await github_tokens(service, user_id)
        with cli_environment(service.app.state.runtime.settings.database_url):
            await asyncio.to_thread(mcp_auth, ["users", "disable", user_id])
            capsys.readouterr()
            await asyncio.to_thread(mcp_auth, ["users", "show", user_id])
        shown = capsys.readouterr().out
        assert "login       leaver" in shown
        assert "disabled" in shown
        assert "user_disabled" in shown  # the grant's STATE: why it ended
        [leaver] = await all_rows(database, User, User.id == user_id)
        assert leaver.disabled_at is not None
        assert_oauth_error(
            await refresh(service.client, tokens.client, tokens.refresh_token), "invalid_grant"
        )


# --- the upstream failing while it is asked about a signed-in user ----------------------------------


async def test_github_failing_as_a_signed_in_user_approves_is_sent_back_to_the_client(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    """Issue 11: "provider failure → redirect with temporarily_unavailable, with state and iss". A
    signed-in user whose re-check is due approves a new client while GitHub's API fails: the client
    must hear back rather than the person being left on a JSON error."""
    async with member_with_two_grants(make_settings, github) as (service, person, _grants):
        client = await new_client(service, "New")
        request = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
        consent = await person.browser.open(request.url())
        assert isinstance(consent, Page)
        await upstream_check_is_due(database)
        github.state.fail("api", "5xx")
        answer = await person.browser.submit(consent, {"decision": "approve"})
        assert isinstance(answer, Arrival), (answer.status_code, answer.text)
        params = query(answer.url)
        assert (params["error"], params["state"], params["iss"]) == (
            "temporarily_unavailable",
            request.state,
            ISSUER,
        )


async def test_a_user_can_revoke_an_application_while_github_is_down(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    """Revoking gives access up: it must not wait on the upstream vouching for the person again."""
    async with member_with_two_grants(make_settings, github) as (_service, person, grants):
        page = await person.browser.open(APPS)
        assert isinstance(page, Page)
        client, _ = grants[0]
        index = next(
            i for i, form in enumerate(page.forms()) if form.fields.get("client_id") == client["client_id"]
        )
        await upstream_check_is_due(database)
        github.state.fail("api", "5xx")
        await person.browser.submit(page, {}, form_index=index)
        [grant] = await all_rows(database, Grant, Grant.client_id == client["client_id"])
        assert grant.revoked_reason == "revoked_by_user"


async def test_the_account_page_while_github_is_down_is_a_page_for_the_person(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    async with member_with_two_grants(make_settings, github) as (_service, person, _grants):
        await upstream_check_is_due(database)
        github.state.fail("api", "5xx")
        for url in (APPS, f"{ISSUER}/account/login"):
            page = await person.http.get(url)
            assert page.status_code == 503, page.text
            assert page.headers["content-type"].startswith("text/html"), page.text


async def test_a_userinfo_outage_after_a_rotating_upstream_refresh_does_not_later_deprovision_the_user(
    make_settings: Callable[..., AuthSettings], oidc_provider: OidcStandIn, database: Database
) -> None:
    """The re-check renews the user's upstream token first; the provider rotates the refresh token (the
    old one is dead from then on); then asking userinfo fails. The request answers 503, but it must keep
    the new refresh token: rolled back, the next re-check presents the dead one, the provider refuses,
    and the policy deprovisions a user nobody removed, for a transient outage."""
    state = oidc_provider.state
    user = state.add_user("alice")
    scopes = "openid email profile offline_access"
    async with oidc_service(make_settings, oidc_provider, oidc_scopes=scopes) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        await expire_upstream_token(database, user.sub)
        await forget_upstream_check(database, user.sub)
        state.fail("userinfo", "5xx")
        busy = await refresh(service.client, tokens["client"], tokens["refresh_token"])
        assert_oauth_error(busy, "temporarily_unavailable", 503)
        state.recover()
        again = await refresh(service.client, tokens["client"], tokens["refresh_token"])
        assert again.status_code == 200, again.text
        [grant] = await all_rows(database, Grant, Grant.client_id == tokens["client"]["client_id"])
        assert grant.revoked_at is None


class DuringUpstreamCheck(Rendezvous):
    """The real connector; while it is asked about the user, `meanwhile` runs (another actor's move)."""

    def __init__(self, real: Connector, meanwhile: Callable[[], Any]) -> None:
        super().__init__(real, 1)
        self._meanwhile = meanwhile

    async def check_access(self, identity: Identity) -> None:
        await self._meanwhile()
        await self._real.check_access(identity)


async def test_a_code_redeemed_while_the_user_is_being_disabled_leaves_no_live_grant(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    """The operator disables the user while a code of theirs is being redeemed (the redemption is asking
    GitHub): `disable` must not miss the grant the redemption is about to add. The redemption holds the
    user's row (FOR SHARE), so the disable waits for it and then revokes what it made."""
    async with member_with_two_grants(make_settings, github) as (service, person, grants):
        client, _ = grants[0]
        request = new_request(client["client_id"], redirect_uri=CLAUDE_CALLBACK)
        arrival = await person.browser.open(request.url())
        assert isinstance(arrival, Arrival)
        [user] = await all_rows(database, User, User.login == person.login)
        await upstream_check_is_due(database)
        disabling: list[asyncio.Future[None]] = []

        async def operator_disables() -> None:
            """Start `mcp-auth users disable` and let the redemption go on once the disable is blocked."""
            disabling.append(
                asyncio.ensure_future(asyncio.to_thread(mcp_auth, ["users", "disable", user.id]))
            )
            await someone_waits_for_a_lock(database)

        with cli_environment(service.app.state.runtime.settings.database_url):
            with upstream_wrapped(service, lambda real: DuringUpstreamCheck(real, operator_disables)):
                await redeem(service.client, request, query(arrival.url)["code"])
            await disabling[0]
        live = await all_rows(database, Grant, Grant.user_id == user.id, Grant.revoked_at.is_(None))
        assert live == [], "a disabled user holds a live grant"


async def someone_waits_for_a_lock(database: Database) -> None:
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    for _ in range(200):
        async with database() as session:
            if await session.scalar(waiting):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the disable never waited for the redemption's lock on the user")


async def test_a_spent_github_rate_limit_does_not_deprovision_the_user(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    """The user's GitHub token is also the one their tools get by exchange: a tool server (or a busy
    user) can spend its hourly quota. GitHub then answers 403 with `x-ratelimit-remaining: 0` — "wait",
    not "no". The re-check due meanwhile must not take that as a refusal and deprovision the user."""
    async with member_with_two_grants(make_settings, github) as (service, _person, grants):
        client, tokens = grants[0]
        await upstream_check_is_due(database)
        github.state.fail("api", "rate_limit")
        busy = await refresh(service.client, client, tokens["refresh_token"])
        assert_oauth_error(busy, "temporarily_unavailable", 503)
        github.state.recover()
        again = await refresh(service.client, client, tokens["refresh_token"])
        assert again.status_code == 200, again.text
        [grant] = await all_rows(database, Grant, Grant.client_id == client["client_id"])
        assert grant.revoked_at is None


# --- silent approval: https is not enough on this machine's own addresses ----------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://127.0.0.1:8443/callback",
        "https://localhost:8443/callback",
        "https://app.localhost/callback",  # browsers resolve *.localhost to loopback (RFC 6761 §6.3)
        "https://[::1]:8443/callback",
        "https://0.0.0.0:8443/callback",
    ],
)
async def test_a_local_program_cannot_get_a_code_silently_through_an_https_loopback_redirect(
    auth_client: httpx.AsyncClient, redirect_uri: str
) -> None:
    """RFC 8252 §8.6: on this machine's own addresses any local program can take the port when the app is
    not listening, and one running as the user can present a certificate the browser trusts (a local
    development CA such as mkcert's). Exact https matching proves nothing there: the page must show."""
    registered = await register(auth_client, redirect_uris=[redirect_uri])
    browser = browser_for(auth_client, redirect_uri)
    url = new_request(registered["client_id"], redirect_uri=redirect_uri).url()
    await approve_and_sign_in(browser, url, "native-user")
    again = await browser.open(new_request(registered["client_id"], redirect_uri=redirect_uri).url())
    assert isinstance(again, Page), again
