"""The connected-applications page in a real Chromium against a real `mcp-auth serve` (dev upstream).

Chromium itself approves two OAuth clients (consent page, dev sign-in form), the test redeems
their codes, then the same browser opens /account/apps, sees both, and revokes one: its refresh
token dies at /token while the other's still works. A fresh browser signs in from the page's
own "Sign in" link. Screenshots land in the test's tmp_path.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from mcp_testing.processes import free_port

from ..auth_process import DevAuthService, dev_auth_service, tools_resources
from ..flow import CALLBACK, AuthorizationRequest, new_request, query

RESOURCE = f"http://127.0.0.1:{free_port()}/mcp"  # only its name matters: no MCP server is called


@pytest.fixture(scope="module")
def auth(migrated_database: str) -> Iterator[DevAuthService]:
    with dev_auth_service(migrated_database, tools_resources(RESOURCE)) as service:
        yield service


@pytest_asyncio.fixture
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (cookies of its own) whose loopback OAuth callbacks are answered locally."""
    context = await chromium.new_context(viewport={"width": 1100, "height": 700})

    async def callback_page(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<h1>Back in the app</h1>")

    await context.route(f"{CALLBACK}**", callback_page)
    try:
        yield context
    finally:
        await context.close()


async def _authorize_in_chromium(page: Page, auth: DevAuthService, name: str, user: str) -> dict[str, Any]:
    """Register `name`, approve it in Chromium (signing in if needed), redeem the code: its tokens."""
    async with httpx.AsyncClient(base_url=auth.issuer, trust_env=False) as http:
        metadata = {
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": name,
        }
        registered = (await http.post("/register", json=metadata)).json()
        request = new_request(
            registered["client_id"], resource=RESOURCE, issuer=auth.issuer, scope="mcp:tools offline_access"
        )
        await page.goto(request.url())
        await expect(page.get_by_role("heading")).to_contain_text(name)
        await page.click('button[name="decision"][value="approve"]')
        await page.wait_for_url(lambda url: url.startswith((CALLBACK, f"{auth.issuer}/upstream/dev/login")))
        if "/upstream/dev/login" in page.url:  # not signed in yet: the dev upstream's form
            await page.fill('input[name="username"]', user)
            await page.click('button[type="submit"]')
            await page.wait_for_url(f"{CALLBACK}**")
        tokens = await _redeem(http, request, query(page.url)["code"])
    return {"client_id": registered["client_id"], **tokens}


async def _redeem(http: httpx.AsyncClient, request: AuthorizationRequest, code: str) -> dict[str, Any]:
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": request.verifier,
            "client_id": request.client_id,
            "resource": RESOURCE,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refresh(auth: DevAuthService, tokens: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=auth.issuer, trust_env=False) as http:
        return await http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": tokens["client_id"],
            },
        )


async def test_a_user_sees_both_applications_and_revokes_one(
    auth: DevAuthService, context: BrowserContext, tmp_path: Path
) -> None:
    page = await context.new_page()
    alice = f"alice-{secrets.token_hex(4)}"  # the test database, and so its users, are shared
    notes = await _authorize_in_chromium(page, auth, "Notes Desktop", alice)
    editor = await _authorize_in_chromium(page, auth, "Code Editor", alice)

    await page.goto(f"{auth.issuer}/account/apps")
    await expect(page.get_by_text("Signed in as")).to_contain_text(alice)
    for tokens, name in ((notes, "Notes Desktop"), (editor, "Code Editor")):
        app = page.locator(f'section[data-client-id="{tokens["client_id"]}"]')
        await expect(app.get_by_role("heading")).to_have_text(name)
        await expect(app.locator("tr.connection")).to_contain_text("Tools 1")
        await expect(app.locator("code.scope")).to_have_text(["mcp:tools", "offline_access"])
    await page.screenshot(path=str(tmp_path / "connected_apps.png"), full_page=True)

    await page.get_by_role("button", name="Revoke Notes Desktop for Tools 1").click()
    await page.wait_for_load_state()
    await expect(page.locator(f'section[data-client-id="{notes["client_id"]}"]')).to_have_count(0)
    await expect(page.locator(f'section[data-client-id="{editor["client_id"]}"]')).to_have_count(1)
    await page.screenshot(path=str(tmp_path / "connected_apps_after_revoke.png"), full_page=True)

    revoked = await _refresh(auth, notes)
    assert revoked.status_code == 400, revoked.text
    assert revoked.json()["error"] == "invalid_grant"
    still = await _refresh(auth, editor)
    assert still.status_code == 200, still.text


async def test_the_pages_sign_in_link_signs_in_and_comes_back(
    auth: DevAuthService, context: BrowserContext, tmp_path: Path
) -> None:
    page = await context.new_page()
    response = await page.goto(f"{auth.issuer}/account/apps")
    assert response is not None
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    await page.click("#sign-in")
    bob = f"bob-{secrets.token_hex(4)}"
    await page.fill('input[name="username"]', bob)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{auth.issuer}/account/apps")
    await expect(page.get_by_text("Signed in as")).to_contain_text(bob)
    await expect(page.get_by_text("No application can use an MCP server")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "signed_in_without_apps.png"), full_page=True)
    await page.click("#sign-out")
    await page.wait_for_url(f"{auth.issuer}/account/apps")
    await expect(page.locator("#sign-in")).to_be_visible()
