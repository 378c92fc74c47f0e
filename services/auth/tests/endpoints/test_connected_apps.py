"""The connected-applications page: signing in for it, listing grants, revoking them, signing out."""

from __future__ import annotations

import re
import secrets

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from mcp_auth_server.db.models import Consent, Grant
from mcp_auth_server.web.pages import PAGE_HEADERS
from mcp_testing.browser import Arrival, Page

from ..conftest import ISSUER, RESOURCE_A, RESOURCE_B, client_for
from ..flow import (
    Database,
    all_rows,
    assert_oauth_error,
    audit_events,
    browser_for,
    execute,
    new_request,
    refresh,
    tokens_for,
)

APPS = f"{ISSUER}/account/apps"


def someone(name: str) -> str:
    """A username no other test signs in as: the test database is shared, and so are its users."""
    return f"{name}-{secrets.token_hex(4)}"


async def _page(client: httpx.AsyncClient) -> Page:
    page = await browser_for(client).open(APPS)
    assert isinstance(page, Page), page
    assert page.status_code == 200, page.text
    return page


def _revoke_form(page: Page, client_id: str, resource: str) -> dict[str, str]:
    for form in page.forms():
        if form.fields.get("client_id") == client_id and form.fields.get("resource") == resource:
            return form.fields
    raise AssertionError(f"no revoke form for {client_id} {resource}")


async def test_signed_out_page_offers_sign_in_with_page_headers(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/account/apps")
    assert response.status_code == 200
    assert f'href="{ISSUER}/account/login"' in response.text
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value


async def test_sign_in_from_the_page_lands_back_on_it(auth_client: httpx.AsyncClient) -> None:
    browser = browser_for(auth_client)
    sign_in_form = await browser.open(f"{ISSUER}/account/login")
    assert isinstance(sign_in_form, Page)
    assert "/upstream/dev/login" in sign_in_form.url
    alice = someone("alice")
    page = await browser.submit(sign_in_form, {"username": alice})
    assert isinstance(page, Page), page
    assert page.url == APPS
    assert f"Signed in as <strong>{alice}</strong>" in page.text
    assert "No application can use an MCP server" in page.text
    # Signed in already: the link goes straight to the page.
    again = await auth_client.get("/account/login")
    assert again.status_code == 303
    assert again.headers["location"] == APPS


async def test_page_lists_each_application_with_its_servers_and_scopes(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    carol = someone("carol")
    claude = await tokens_for(auth_client, carol, registration={"client_name": "Claude"})
    await tokens_for(auth_client, carol, registration={"client_name": "Cursor"}, resource=RESOURCE_B)
    # Granted a minute earlier (both were granted within the same second otherwise).
    earlier = Grant.created_at - 60
    await execute(
        database,
        update(Grant).where(Grant.client_id == claude.client["client_id"]).values(created_at=earlier),
    )
    page = await _page(auth_client)
    assert page.text.index("Cursor") < page.text.index("Claude")  # most recently granted first
    rows = re.findall(r'<tr class="connection" data-resource="([^"]+)">', page.text)
    assert rows == [RESOURCE_B, RESOURCE_A]
    assert '<code class="scope">offline_access</code>' in page.text
    assert '<code class="scope">mcp:tools</code>' in page.text
    assert "never" not in page.text  # every grant was used when its tokens were issued


async def test_revoking_ends_the_refresh_family_and_forgets_consent(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    dave = someone("dave")
    revoked = await tokens_for(auth_client, dave, registration={"client_name": "Revoked"})
    kept = await tokens_for(auth_client, dave, registration={"client_name": "Kept"})
    client_id = revoked.client["client_id"]
    page = await _page(auth_client)
    answer = await auth_client.post("/account/apps/revoke", data=_revoke_form(page, client_id, RESOURCE_A))
    assert answer.status_code == 303
    assert answer.headers["location"] == APPS

    assert "Revoked" not in (await _page(auth_client)).text
    assert_oauth_error(await refresh(auth_client, revoked.client, revoked.refresh_token), "invalid_grant")
    assert (await refresh(auth_client, kept.client, kept.refresh_token)).status_code == 200
    [grant] = await all_rows(database, Grant, Grant.client_id == client_id)
    assert grant.revoked_reason == "revoked_by_user"
    [event] = await audit_events(database, "grant_revoked", client_id)
    assert event.details == {"grant_id": grant.id, "by": "user"}
    assert await all_rows(database, Consent, Consent.client_id == client_id) == []
    # The application must ask again: the consent page, not a silent code for the live session.
    consent = await browser_for(auth_client).open(new_request(client_id).url())
    assert isinstance(consent, Page), consent
    assert consent.status_code == 200
    assert 'value="approve"' in consent.text


async def test_revoke_without_this_browsers_csrf_token_is_refused(
    auth_app: FastAPI, database: Database
) -> None:
    async with client_for(auth_app) as alice, client_for(auth_app) as attacker:
        tokens = await tokens_for(alice, someone("alice"))
        client_id = tokens.client["client_id"]
        fields = _revoke_form(await _page(alice), client_id, RESOURCE_A)
        # The attacker's own page yields a valid token, but for the attacker's browser only.
        await tokens_for(attacker, someone("mallory"))
        attacker_token = (await _page(attacker)).forms()[-1].fields["csrf_token"]
        for csrf_token in ("", "0" * 64, attacker_token):
            refused = await alice.post("/account/apps/revoke", data={**fields, "csrf_token": csrf_token})
            assert refused.status_code == 403, refused.text
        [grant] = await all_rows(database, Grant, Grant.client_id == client_id)
        assert grant.revoked_at is None


async def test_a_user_cannot_revoke_another_users_grant(auth_app: FastAPI, database: Database) -> None:
    async with client_for(auth_app) as alice, client_for(auth_app) as bob:
        tokens = await tokens_for(alice, someone("alice"))
        await tokens_for(bob, someone("bob"))
        client_id = tokens.client["client_id"]
        bob_form = (await _page(bob)).forms()[-1].fields
        answer = await bob.post(
            "/account/apps/revoke", data={**bob_form, "client_id": client_id, "resource": RESOURCE_A}
        )
        assert answer.status_code == 303
        [grant] = await all_rows(database, Grant, Grant.client_id == client_id)
        assert grant.revoked_at is None
        assert (await refresh(alice, tokens.client, tokens.refresh_token)).status_code == 200


async def test_account_sign_in_state_is_single_use_and_bound_to_the_browser(auth_app: FastAPI) -> None:
    async with client_for(auth_app) as person, client_for(auth_app) as other:
        started = await person.get("/account/login")
        assert started.status_code == 303
        form = await browser_for(person).open(started.headers["location"])
        assert isinstance(form, Page)
        state = form.forms()[0].fields["state"]
        elsewhere = await other.post("/callback", data={"state": state, "username": "mallory"})
        assert elsewhere.status_code == 400  # another browser cannot finish it (login CSRF)
        done = await person.post("/callback", data={"state": state, "username": "alice"})
        assert done.status_code == 303
        assert done.headers["location"] == APPS
        replay = await person.post("/callback", data={"state": state, "username": "alice"})
        assert replay.status_code == 400


async def test_sign_out_ends_the_session(auth_client: httpx.AsyncClient) -> None:
    browser = browser_for(auth_client)
    sign_in_form = await browser.open(f"{ISSUER}/account/login")
    assert isinstance(sign_in_form, Page)
    page = await browser.submit(sign_in_form, {"username": someone("alice")})
    assert isinstance(page, Page)
    session_cookie = auth_client.cookies["mcp_auth_session"]
    after = await browser.submit(page, {}, form_index=0)  # the Sign out form
    assert isinstance(after, Page)
    assert 'id="sign-in"' in after.text
    # The old cookie is dead server-side, not just deleted from this browser.
    auth_client.cookies.set("mcp_auth_session", session_cookie)
    assert 'id="sign-in"' in (await auth_client.get("/account/apps")).text
    refused = await auth_client.post("/account/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert not isinstance(after, Arrival)
