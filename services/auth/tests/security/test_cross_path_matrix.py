"""The cross-path matrix: every event that ends a credential, against every path that issues or honours one.

A new event or a new path is one more row. For each event a fresh world is built — a user signed in
with GitHub (through the stand-in) holding a grant G of client C for resource A, a code of C issued
and a consent page opened before the event, a sibling grant of the same user to another client, and
another user's grant — then the event happens, then every path is tried with what existed before it:

    /authorize with the live session · consent approval · redemption of the code issued before ·
    refresh of G · token exchange of G's access token · introspection of it · an MCP server in
    introspection mode (its client authenticating with a secret, and one with a private key:
    private_key_jwt) · the connected-applications page · an enterprise IdP's fresh ID-JAG for the
    user, presented by a confidential client E registered for the JWT-bearer grant · introspection of a
    token E got on an ID-JAG before the event

Expectations (`EXPECTED`): REFUSED everywhere, with the protocol's own answer. Two events end one
grant and nothing else — the client revoking it (RFC 7009) and refresh-token reuse (RFC 9700
§4.14.2) — so they leave the user's consent and session standing: there, a new authorization (a
silent one for this https client, an approval, a code issued before) makes a NEW grant, and the
cell checks that G itself stays ended ("NEW_GRANT_ONLY"). A consent page opened before an event
that only ends grants or consent is the person's own new decision when approved afterwards.
An ID-JAG is the enterprise IdP's own fresh decision for E (no grant, no consent of ours behind it):
events that end one grant or consent of C leave it standing ("IDP_VOUCHES"); the user disabled, or no
longer admitted by the upstream that also knows them, refuse it.

After every event: the other user's grant still refreshes; after the grant- and consent-level events,
so does the same user's grant to the other client (nothing else of the user's is touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mcp_auth_kit import ClientCredentials, DPoPKey, IntrospectingVerifier, JWKSCache, PrivateKeyJWT
from mcp_auth_server.cli import main as mcp_auth
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Consent, Grant, UpstreamIdentity, User
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Browser, Page
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.github_standin import GitHubStandIn

from ..conftest import ISSUER, RESOURCE_A, TEST_SECRET
from ..federation import JWT_BEARER, enterprise_client
from ..flow import (
    CLAUDE_CALLBACK,
    AuthorizationRequest,
    Database,
    GitHubService,
    all_rows,
    execute,
    github_service,
    new_request,
    query,
    redeem,
    refresh,
    register,
)
from ..operator_clients import TOKEN_EXCHANGE, key_client, resource_server_client

SCOPES = "mcp:tools github:repos offline_access"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
APPS = f"{ISSUER}/account/apps"


class Outcome(enum.Enum):
    REFUSED = "refused"  # no credential: an OAuth error, an error page, no code, inactive, 401, absent
    NEW_GRANT_ONLY = "a new grant, G stays ended"  # see the module docstring
    IDP_VOUCHES = "a new token by the IdP's fresh decision"  # see the module docstring
    APPROVAL_IS_NEW_CONSENT = "an approval after the event is the person's new decision"


@dataclass
class Person:
    http: httpx.AsyncClient  # one browser: its own cookie jar
    browser: Browser
    login: str
    user_id: str = ""


@dataclass
class World:
    service: GitHubService
    database: Database
    user: Person
    other: Person
    client: dict[str, Any]  # C: a public client with an https redirect (so silence is possible)
    tokens: dict[str, Any]  # G's tokens
    grant_id: str
    code_request: AuthorizationRequest  # G's own code, redeemed
    code: str
    pending: tuple[AuthorizationRequest, str]  # a code of C issued before the event, not yet redeemed
    consent_page: Page  # for another client, opened before the event
    sibling: tuple[dict[str, Any], dict[str, Any]]  # the user's grant to another client: (client, tokens)
    others: tuple[dict[str, Any], dict[str, Any]]  # the other user's grant
    resource_server: tuple[str, str]  # A's own confidential client
    keyed_resource_server: ClientCredentials  # A's client with a key pair instead (private_key_jwt)
    idp: EnterpriseIdpStandIn  # trusted here; its people are linked to ours by email
    enterprise: tuple[str, str]  # E, a confidential client registered for the JWT-bearer grant
    idp_token: str = ""  # E's access token on an ID-JAG, issued before the event (the control sets it)

    def id_jag(self) -> str:
        """A fresh ID-JAG for the user (by their email) to E, for resource A."""
        return self.idp.state.id_jag(
            sub=f"idp-{self.user.login}",
            audience=ISSUER,
            client_id=self.enterprise[0],
            resource=RESOURCE_A,
            scope="mcp:tools",
            email=f"{self.user.login}@acme.example",
            email_verified=True,  # only a verified address links the person to the user
        )


async def keyed_resource_server(client: httpx.AsyncClient) -> ClientCredentials:
    key = PrivateKeyJWT.from_pem(DPoPKey.generate("ES256").private_key_pem())
    client_id = await key_client(
        client, origin="resource_server", jwks=key.public_jwks(), served_resource=RESOURCE_A
    )
    return ClientCredentials(client_id, private_key=key)


def browser(service: GitHubService) -> Person:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app),
        mounts={service.github.base_url: httpx.AsyncHTTPTransport()},
        base_url=ISSUER,
        follow_redirects=False,
    )
    return Person(http, Browser(http, stop_at=[CLAUDE_CALLBACK]), "")


async def authorize(person: Person, client_id: str) -> tuple[AuthorizationRequest, str]:
    """Approve (or be approved silently) and come back with a code; signs in at GitHub when needed."""
    request = new_request(client_id, redirect_uri=CLAUDE_CALLBACK, scope=SCOPES)
    outcome = await person.browser.open(request.url())
    while isinstance(outcome, Page):
        assert 'value="approve"' in outcome.text, outcome.text
        outcome = await person.browser.submit(outcome, {"decision": "approve"})
    assert isinstance(outcome, Arrival), outcome
    assert "code" in query(outcome.url), outcome.url
    return request, query(outcome.url)["code"]


async def grant_of(service: GitHubService, person: Person, client: dict[str, Any]) -> dict[str, Any]:
    request, code = await authorize(person, client["client_id"])
    response = await redeem(service.client, request, code)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def new_client(service: GitHubService, name: str) -> dict[str, Any]:
    return await register(service.client, redirect_uris=[CLAUDE_CALLBACK], client_name=name)


@contextlib.asynccontextmanager
async def world(
    make_settings: Callable[..., AuthSettings],
    github: GitHubStandIn,
    database: Database,
    idp: EnterpriseIdpStandIn,
) -> AsyncIterator[World]:
    suffix = secrets.token_hex(3)
    user, other = f"user-{suffix}", f"other-{suffix}"
    for login in (user, other):
        github.state.add_user(login, orgs=["acme"], email=f"{login}@acme.example")
        github.state.auto_login = None
    # No grace window: a rotated refresh token presented again is reuse at once.
    overrides = {
        "auth_allowed_orgs": ["acme"],
        "auth_refresh_grace_seconds": 0,
        "auth_trusted_issuers": [{"issuer": idp.issuer, "kind": "enterprise-idp", "user_claim": "email"}],
    }
    async with github_service(make_settings, github, **overrides) as service:
        people = browser(service), browser(service)
        try:
            for person, login in zip(people, (user, other), strict=True):
                person.login = login
            alice, bob = people
            github.state.auto_login = other
            others_client = await new_client(service, "Other's client")
            others = (others_client, await grant_of(service, bob, others_client))
            github.state.auto_login = user
            client = await new_client(service, "C")
            code_request, code = await authorize(alice, client["client_id"])
            tokens = (await redeem(service.client, code_request, code)).json()
            sibling_client = await new_client(service, "Sibling")
            sibling = (sibling_client, await grant_of(service, alice, sibling_client))
            pending = await authorize(alice, client["client_id"])  # silent: C's https redirect is assured
            later = await new_client(service, "Approved after the event")
            consent_page = await alice.browser.open(
                new_request(later["client_id"], redirect_uri=CLAUDE_CALLBACK).url()
            )
            assert isinstance(consent_page, Page)
            [grant] = await all_rows(database, Grant, Grant.client_id == client["client_id"])
            alice.user_id, bob.user_id = str(grant.user_id), ""
            yield World(
                service=service,
                database=database,
                user=alice,
                other=bob,
                client=client,
                tokens=tokens,
                grant_id=grant.id,
                code_request=code_request,
                code=code,
                pending=pending,
                consent_page=consent_page,
                sibling=sibling,
                others=others,
                resource_server=await resource_server_client(service.client, RESOURCE_A),
                keyed_resource_server=await keyed_resource_server(service.client),
                idp=idp,
                enterprise=await enterprise_client(service.client),
            )
        finally:
            for person in people:
                await person.http.aclose()


# --- the events ---------------------------------------------------------------------------------


async def client_revokes_the_refresh_token(w: World) -> None:
    response = await w.service.client.post(
        "/revoke", data={"token": w.tokens["refresh_token"], "client_id": w.client["client_id"]}
    )
    assert response.status_code == 200


async def user_revokes_on_the_connected_apps_page(w: World) -> None:
    page = await w.user.browser.open(APPS)
    assert isinstance(page, Page)
    index = next(
        i for i, form in enumerate(page.forms()) if form.fields.get("client_id") == w.client["client_id"]
    )
    await w.user.browser.submit(page, {}, form_index=index)


async def refresh_token_reuse_is_detected(w: World) -> None:
    rotated = await refresh(w.service.client, w.client, w.tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    reused = await refresh(w.service.client, w.client, w.tokens["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    w.tokens = rotated.json()  # the paths then try the newest tokens of the revoked family


async def user_removed_from_the_allowed_org(w: World) -> None:
    w.service.github.state.users[w.user.login].orgs = []
    await execute(w.database, update(UpstreamIdentity).values(checked_at=now() - 10 * 3600))


@contextlib.contextmanager
def cli_environment(database_url: str) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AUTH_ISSUER": ISSUER,
            "AUTH_DATABASE_URL": database_url,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "AUTH_UPSTREAM": "dev",
        }.items():
            patch.setenv(name, value)
        yield


async def run_cli(w: World, *args: str) -> None:
    """`mcp-auth …` itself (its own event loop, so in a thread), on the service's database."""
    runtime = w.service.app.state.runtime
    with cli_environment(runtime.settings.database_url):
        await asyncio.to_thread(mcp_auth, list(args))


async def operator_disables_the_user(w: World) -> None:
    await run_cli(w, "users", "disable", w.user.user_id)


async def operator_removes_the_client(w: World) -> None:
    await run_cli(w, "clients", "remove", w.client["client_id"])


async def consent_lapses(w: World) -> None:
    await execute(
        w.database,
        update(Consent)
        .where(Consent.user_id == w.user.user_id, Consent.client_id == w.client["client_id"])
        .values(expires_at=now() - 1),
    )


# --- the paths: each returns what it got, for the table to judge ----------------------------------


async def authorize_with_the_live_session(w: World) -> Outcome:
    request = new_request(w.client["client_id"], redirect_uri=CLAUDE_CALLBACK, scope=SCOPES)
    outcome = await w.user.browser.open(request.url())
    if isinstance(outcome, Arrival) and "code" in query(outcome.url):
        return await _new_grant_only(w, request, query(outcome.url)["code"])
    return Outcome.REFUSED  # a page (sign in, or approve again) or an error: no code without the person


async def approve_a_consent_page_opened_before(w: World) -> Outcome:
    outcome = await w.user.browser.submit(w.consent_page, {"decision": "approve"})
    if isinstance(outcome, Arrival) and "code" in query(outcome.url):
        return Outcome.APPROVAL_IS_NEW_CONSENT
    return Outcome.REFUSED


async def redeem_a_code_issued_before(w: World) -> Outcome:
    replay = await redeem(w.service.client, w.code_request, w.code)  # G's own code, a second time
    assert replay.status_code in (400, 401), replay.text
    request, code = w.pending
    response = await redeem(w.service.client, request, code)
    if response.status_code == 200:
        return await _new_grant_only(w, None, None, response.json())
    assert response.json()["error"] in ("invalid_grant", "invalid_client"), response.text
    return Outcome.REFUSED


async def refresh_the_grant(w: World) -> Outcome:
    response = await refresh(w.service.client, w.client, w.tokens["refresh_token"])
    assert response.status_code != 200, response.text
    assert response.json()["error"] in ("invalid_grant", "invalid_client"), response.text
    return Outcome.REFUSED


async def exchange_the_access_token(w: World) -> Outcome:
    response = await w.service.client.post(
        "/token",
        auth=w.resource_server,
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": w.tokens["access_token"],
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant", response.text
    return Outcome.REFUSED


async def introspect_the_access_token(w: World) -> Outcome:
    response = await w.service.client.post(
        "/introspect", auth=w.resource_server, data={"token": w.tokens["access_token"]}
    )
    assert response.json() == {"active": False}, response.text
    return Outcome.REFUSED


async def an_mcp_server_in_introspection_mode(w: World) -> Outcome:
    assert await _introspecting_server_admits(w, w.tokens["access_token"]) is False
    return Outcome.REFUSED


async def an_mcp_server_introspecting_with_its_private_key(w: World) -> Outcome:
    """The same question asked by a resource server that authenticates with private_key_jwt."""
    assert await _introspecting_server_admits(w, w.tokens["access_token"], w.keyed_resource_server) is False
    return Outcome.REFUSED


async def the_connected_apps_page(w: World) -> Outcome:
    page = await w.user.browser.open(APPS)
    assert isinstance(page, Page)
    assert w.client["client_id"] not in page.text, "the ended grant is still listed"
    return Outcome.REFUSED


async def present_an_id_jag_for_the_user(w: World) -> Outcome:
    response = await w.service.client.post(
        "/token", auth=w.enterprise, data={"grant_type": JWT_BEARER, "assertion": w.id_jag()}
    )
    if response.status_code == 200:
        return Outcome.IDP_VOUCHES
    assert response.json()["error"] == "invalid_grant", response.text
    return Outcome.REFUSED


async def introspect_a_token_issued_on_an_id_jag(w: World) -> Outcome:
    response = await w.service.client.post("/introspect", auth=w.resource_server, data={"token": w.idp_token})
    return Outcome.IDP_VOUCHES if response.json()["active"] else Outcome.REFUSED


async def _new_grant_only(
    w: World, request: AuthorizationRequest | None, code: str | None, tokens: dict[str, Any] | None = None
) -> Outcome:
    """A code (or tokens) came: acceptable only as a new grant while G itself stays ended."""
    if tokens is None:
        assert request is not None
        assert code is not None
        response = await redeem(w.service.client, request, code)
        assert response.status_code == 200, response.text
        tokens = response.json()
    grants = await all_rows(w.database, Grant, Grant.id == w.grant_id)
    assert all(grant.revoked_at is not None for grant in grants), "G came back"
    assert (await refresh(w.service.client, w.client, w.tokens["refresh_token"])).status_code != 200
    assert tokens["refresh_token"] != w.tokens["refresh_token"]
    return Outcome.NEW_GRANT_ONLY


async def _introspecting_server_admits(
    w: World, token: str, credentials: ClientCredentials | None = None
) -> bool:
    """What `protect(..., introspection=...)` decides for `token`, with its own (empty) cache; as A's
    secret client unless `credentials` says otherwise."""
    credentials = credentials or ClientCredentials(*w.resource_server)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=w.service.app), base_url=ISSUER)
    verifier = IntrospectingVerifier(
        issuer=ISSUER,
        resource_url=RESOURCE_A,
        client_id=credentials.client_id,
        client_secret=credentials.secret,
        private_key=credentials.private_key,
        http_client=http,
        jwks=JWKSCache(ISSUER, http_client=http),
    )
    try:
        return await verifier.verify_token(token) is not None
    finally:
        await verifier.aclose()
        await http.aclose()


Event = Callable[[World], Awaitable[None]]
PathCheck = Callable[[World], Awaitable[Outcome]]

PATHS: list[PathCheck] = [
    introspect_the_access_token,
    an_mcp_server_in_introspection_mode,
    an_mcp_server_introspecting_with_its_private_key,
    exchange_the_access_token,
    the_connected_apps_page,
    refresh_the_grant,
    redeem_a_code_issued_before,
    authorize_with_the_live_session,
    approve_a_consent_page_opened_before,
    present_an_id_jag_for_the_user,
    introspect_a_token_issued_on_an_id_jag,
]
R, N, A, V = Outcome.REFUSED, Outcome.NEW_GRANT_ONLY, Outcome.APPROVAL_IS_NEW_CONSENT, Outcome.IDP_VOUCHES
# event: (what it leaves of the user's other credentials, expected outcome per path above, in order)
EXPECTED: dict[Event, tuple[str, list[Outcome]]] = {
    client_revokes_the_refresh_token: ("siblings", [R, R, R, R, R, R, N, N, A, V, V]),
    user_revokes_on_the_connected_apps_page: ("siblings", [R, R, R, R, R, R, R, R, A, V, V]),
    refresh_token_reuse_is_detected: ("siblings", [R, R, R, R, R, R, N, N, A, V, V]),
    user_removed_from_the_allowed_org: ("nothing", [R, R, R, R, R, R, R, R, R, R, R]),
    operator_disables_the_user: ("nothing", [R, R, R, R, R, R, R, R, R, R, R]),
    operator_removes_the_client: ("siblings", [R, R, R, R, R, R, R, R, A, V, V]),
    consent_lapses: ("siblings", [R, R, R, R, R, R, R, R, A, V, V]),
}


@pytest.mark.parametrize("event", list(EXPECTED), ids=lambda event: event.__name__)
async def test_every_path_honours_the_event(
    event: Event,
    make_settings: Callable[..., AuthSettings],
    github: GitHubStandIn,
    database: Database,
    enterprise_idp: EnterpriseIdpStandIn,
) -> None:
    leaves, expected = EXPECTED[event]
    async with world(make_settings, github, database, enterprise_idp) as w:
        first = await w.service.client.post(  # links the IdP's person to the user, by email
            "/token", auth=w.enterprise, data={"grant_type": JWT_BEARER, "assertion": w.id_jag()}
        )
        w.idp_token = first.json()["access_token"]
        before = [
            await _introspecting_server_admits(w, w.tokens["access_token"]),
            await _introspecting_server_admits(w, w.tokens["access_token"], w.keyed_resource_server),
            await present_an_id_jag_for_the_user(w) is Outcome.IDP_VOUCHES,
            await introspect_a_token_issued_on_an_id_jag(w) is Outcome.IDP_VOUCHES,
        ]
        assert before == [True] * 4  # the control: G (two ways), an ID-JAG and its token are good before
        await event(w)
        got = {}
        for path in PATHS:
            got[path.__name__] = await path(w)
        assert got == {path.__name__: outcome for path, outcome in zip(PATHS, expected, strict=True)}
        # Nothing of anyone else's is touched; grant- and consent-level events leave the user's other grant.
        others_client, others_tokens = w.others
        assert (
            await refresh(w.service.client, others_client, others_tokens["refresh_token"])
        ).status_code == 200
        sibling_client, sibling_tokens = w.sibling
        sibling = await refresh(w.service.client, sibling_client, sibling_tokens["refresh_token"])
        assert (sibling.status_code == 200) is (leaves == "siblings"), sibling.text


def test_every_event_has_a_row_for_every_path() -> None:
    assert all(len(outcomes) == len(PATHS) for _, outcomes in EXPECTED.values())


async def test_the_user_disabled_cannot_sign_in_again_until_enabled(
    make_settings: Callable[..., AuthSettings],
    github: GitHubStandIn,
    database: Database,
    enterprise_idp: EnterpriseIdpStandIn,
) -> None:
    async with world(make_settings, github, database, enterprise_idp) as w:
        await operator_disables_the_user(w)
        w.user.http.cookies.clear()
        blocked = await w.user.browser.open(
            new_request(w.client["client_id"], redirect_uri=CLAUDE_CALLBACK).url()
        )
        assert isinstance(blocked, Page)
        answer = await w.user.browser.submit(blocked, {"decision": "approve"})
        assert isinstance(answer, Arrival)
        assert query(answer.url)["error"] == "access_denied"
        [user] = await all_rows(database, User, User.id == w.user.user_id)
        assert user.disabled_at is not None
        await run_cli(w, "users", "enable", w.user.user_id)
        request, code = await authorize(w.user, w.client["client_id"])
        assert (await redeem(w.service.client, request, code)).status_code == 200
