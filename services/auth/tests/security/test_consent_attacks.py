"""The consent page: confused deputy, cross-site request forgery, replay and clickjacking.

Covers the MCP authorization spec's security considerations (confused deputy: a proxy with one
static upstream client must get the user's consent for each dynamically registered client
before anything is issued or sent upstream), RFC 6749 §10.12 and RFC 9700 §4.7 (CSRF), RFC 6749
§10.13 and RFC 9700 §4.16 (clickjacking: frame-ancestors / X-Frame-Options), RFC 9700 §4.11.1
(303 after a POST), and RFC 6265bis cookie prefixes and attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuthorizationCode, AuthorizationRequest
from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Browser, Page

from ..conftest import RESOURCE_B, client_for, serve_in_process
from ..flow import (
    CALLBACK,
    Database,
    all_rows,
    approve_and_sign_in,
    assert_error_page,
    browser_for,
    execute,
    new_request,
    query,
    register,
)


@pytest.fixture
async def victim(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(auth_app) as client:
        yield client


@pytest.fixture
async def attacker(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(auth_app) as client:
        yield client


async def codes_for(database: Database, client_id: str) -> list[AuthorizationCode]:
    return await all_rows(database, AuthorizationCode, AuthorizationCode.client_id == client_id)


async def signed_in_victim(victim: httpx.AsyncClient) -> Browser:
    """A victim with a live session and a remembered consent for an honest client."""
    honest = await register(victim, client_name="Honest client")
    browser = browser_for(victim)
    await approve_and_sign_in(browser, new_request(honest["client_id"]).url(), "victim")
    return browser


async def consent_page(browser: Browser, url: str) -> Page:
    page = await browser.open(url)
    assert isinstance(page, Page), page
    assert page.status_code == 200, page.text
    return page


async def test_attacker_client_gets_no_code_for_a_signed_in_victim_without_explicit_approval(
    victim: httpx.AsyncClient, attacker: httpx.AsyncClient, database: Database
) -> None:
    browser = await signed_in_victim(victim)
    evil = await register(attacker, client_name="Honest client", redirect_uris=["https://claude.ai/evil"])
    request = new_request(evil["client_id"], redirect_uri="https://claude.ai/evil")

    page = await consent_page(browser, request.url())  # a page, not a redirect with a code
    assert "claude.ai" in page.text  # where the code would go is shown, not just the borrowed name
    assert evil["client_id"] in page.text
    assert await codes_for(database, evil["client_id"]) == []

    silent = await browser.open(
        new_request(evil["client_id"], redirect_uri="https://claude.ai/evil").url(prompt="none")
    )
    # Nobody approved this client yet: its consent_required is a page with a link, not a redirect
    # (RFC 9700 §4.11.2), and still no code.
    assert isinstance(silent, Page)
    assert silent.status_code == 400
    assert "consent_required" in silent.text
    assert "code=" not in silent.text
    assert await codes_for(database, evil["client_id"]) == []

    arrival = await browser.submit(page, {"decision": "approve"})  # only the victim's own click issues one
    assert isinstance(arrival, Arrival)
    assert "code" in query(arrival.url)
    assert len(await codes_for(database, evil["client_id"])) == 1


async def test_consent_for_narrower_scopes_does_not_cover_a_wider_request(victim: httpx.AsyncClient) -> None:
    client = await register(victim)
    browser = browser_for(victim)
    await approve_and_sign_in(browser, new_request(client["client_id"], scope="mcp:tools").url(), "narrow")
    await consent_page(browser, new_request(client["client_id"], scope="mcp:tools github:repos").url())


async def test_consent_for_one_resource_does_not_cover_another(victim: httpx.AsyncClient) -> None:
    client = await register(victim)
    browser = browser_for(victim)
    await approve_and_sign_in(browser, new_request(client["client_id"]).url(), "one-resource")
    await consent_page(browser, new_request(client["client_id"], resource=RESOURCE_B).url())


async def test_consent_post_without_the_browser_cookie_is_refused(
    victim: httpx.AsyncClient, database: Database
) -> None:
    client = await register(victim)
    page = await consent_page(browser_for(victim), new_request(client["client_id"]).url())
    form = page.forms()[0]
    victim.cookies.clear()  # a cross-site POST: SameSite=Lax keeps the cookie off it
    response = await victim.post(form.action, data={**form.fields, "decision": "approve"})
    assert_error_page(response, 403)
    assert await codes_for(database, client["client_id"]) == []


async def test_consent_form_submitted_from_the_attackers_browser_is_refused(
    victim: httpx.AsyncClient, attacker: httpx.AsyncClient, database: Database
) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    page = await consent_page(browser, new_request(client["client_id"]).url())
    form = page.forms()[0]
    await attacker.get(new_request(client["client_id"]).url())  # the attacker has a binding cookie of its own
    response = await attacker.post(form.action, data={**form.fields, "decision": "approve"})
    assert_error_page(response, 403)
    assert await codes_for(database, client["client_id"]) == []


async def test_attackers_consent_form_posted_by_the_victims_browser_is_refused(
    victim: httpx.AsyncClient, attacker: httpx.AsyncClient, database: Database
) -> None:
    # Login/consent CSRF: the attacker's own pending request, approved with the victim's session.
    browser = await signed_in_victim(victim)
    evil = await register(attacker)
    attacker_page = await consent_page(browser_for(attacker), new_request(evil["client_id"]).url())
    form = attacker_page.forms()[0]
    await browser.open(new_request(evil["client_id"]).url())  # the victim holds a binding cookie too
    response = await victim.post(form.action, data={**form.fields, "decision": "approve"})
    assert_error_page(response, 403)
    assert await codes_for(database, evil["client_id"]) == []


@pytest.mark.parametrize(
    "csrf_token", [None, "", "0" * 64, "wrong"], ids=["missing", "empty", "zeros", "wrong"]
)
async def test_consent_post_with_a_bad_csrf_token_is_refused(
    victim: httpx.AsyncClient, database: Database, csrf_token: str | None
) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    page = await consent_page(browser, new_request(client["client_id"]).url())
    fields = {**page.forms()[0].fields, "decision": "approve"}
    if csrf_token is None:
        del fields["csrf_token"]
    else:
        fields["csrf_token"] = csrf_token
    assert_error_page(await victim.post("/consent", data=fields), 403)
    assert await codes_for(database, client["client_id"]) == []


async def test_csrf_token_of_one_request_does_not_approve_another(
    victim: httpx.AsyncClient, database: Database
) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    first = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    second = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    response = await victim.post(
        "/consent",
        data={
            "request_id": second.fields["request_id"],
            "csrf_token": first.fields["csrf_token"],
            "decision": "approve",
        },
    )
    assert_error_page(response, 403)
    assert await codes_for(database, client["client_id"]) == []


@pytest.mark.parametrize("first_decision", ["approve", "deny"])
async def test_replayed_consent_form_after_it_was_answered_issues_nothing(
    victim: httpx.AsyncClient, database: Database, first_decision: str
) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    form = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    answered = await victim.post(form.action, data={**form.fields, "decision": first_decision})
    assert answered.status_code == 303
    issued = len(await codes_for(database, client["client_id"]))
    for decision in ("approve", "deny"):
        replay = await victim.post(form.action, data={**form.fields, "decision": decision})
        assert_error_page(replay)
    assert len(await codes_for(database, client["client_id"])) == issued


async def test_replayed_consent_form_after_it_was_sent_upstream_issues_nothing(
    victim: httpx.AsyncClient,
) -> None:
    client = await register(victim)
    form = (await consent_page(browser_for(victim), new_request(client["client_id"]).url())).forms()[0]
    upstream = await victim.post(form.action, data={**form.fields, "decision": "approve"})
    assert upstream.status_code == 303
    assert_error_page(await victim.post(form.action, data={**form.fields, "decision": "approve"}))


async def test_concurrent_approvals_of_one_consent_form_issue_one_code(
    victim: httpx.AsyncClient, database: Database
) -> None:
    # A double-click, or an attacker racing the victim's own submission.
    browser = await signed_in_victim(victim)
    client = await register(victim)
    form = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    responses = await asyncio.gather(
        *(victim.post(form.action, data={**form.fields, "decision": "approve"}) for _ in range(10))
    )
    assert sorted(response.status_code for response in responses) == [303] + [400] * 9
    assert len(await codes_for(database, client["client_id"])) == 1


async def test_expired_consent_request_issues_nothing(victim: httpx.AsyncClient, database: Database) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    form = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    await execute(
        database,
        update(AuthorizationRequest)
        .where(AuthorizationRequest.client_id == client["client_id"])
        .values(expires_at=now() - 1),
    )
    assert_error_page(await victim.post(form.action, data={**form.fields, "decision": "approve"}))
    assert await codes_for(database, client["client_id"]) == []


async def test_consent_post_with_neither_approve_nor_deny_issues_nothing(
    victim: httpx.AsyncClient, database: Database
) -> None:
    browser = await signed_in_victim(victim)
    client = await register(victim)
    form = (await consent_page(browser, new_request(client["client_id"]).url())).forms()[0]
    for decision in ("", "APPROVE", "approve "):
        assert_error_page(await victim.post(form.action, data={**form.fields, "decision": decision}))
    assert await codes_for(database, client["client_id"]) == []


async def test_consent_page_cannot_be_framed_or_cached(victim: httpx.AsyncClient) -> None:
    client = await register(victim)
    response = await victim.get(new_request(client["client_id"]).url())
    assert response.status_code == 200
    policy = [directive.strip() for directive in response.headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' covers it


async def test_approve_and_deny_answer_303_so_a_reload_never_resubmits(victim: httpx.AsyncClient) -> None:
    browser = await signed_in_victim(victim)
    for decision in ("approve", "deny"):
        client = await register(victim)
        page = await consent_page(browser, new_request(client["client_id"]).url())
        form = page.forms()[0]
        response = await victim.post(form.action, data={**form.fields, "decision": decision})
        assert response.status_code == 303
        assert response.headers["location"].startswith(CALLBACK)


async def test_consent_cookies_on_an_https_issuer_are_host_prefixed_secure_httponly_and_lax(
    make_settings: Callable[..., AuthSettings],
) -> None:
    issuer = "https://auth.example"
    settings = make_settings(
        auth_issuer=issuer, auth_upstream="github", github_client_id="id", github_client_secret="secret"
    )
    async with serve_in_process(create_app(settings), base_url=issuer) as client:
        registered = await register(client)
        response = await client.get(
            new_request(registered["client_id"]).url().replace("http://127.0.0.1:9000", issuer)
        )
        assert response.status_code == 200, response.text
        [cookie] = response.headers.get_list("set-cookie")
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert cookie.startswith("__Host-mcp_auth_browser=")
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attributes)
        assert not any(attribute.startswith("domain=") for attribute in attributes)
        assert f'action="{issuer}/consent"' in response.text
