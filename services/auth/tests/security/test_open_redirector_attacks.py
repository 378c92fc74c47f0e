"""/authorize as an open redirector: errors found before the client and its redirect URI are verified,
and errors for a dynamically registered client that the person at the browser has not approved.

Covers RFC 9700 §4.11.2 (authorization server as open redirector), RFC 6749 §3.1 (parameters
must not be repeated) and §4.1.2.1 (an invalid client or redirect URI is reported to the user,
not redirected), and robustness against input that the database would refuse. Anyone can register a
client whose redirect URI is their own https page; until the person at the browser has approved that
client (not just anyone: the attacker can sign in and approve it), its errors found before consent are a
page with a link, never an automatic redirect (issue 12).
"""

from __future__ import annotations

import httpx
import pytest

from mcp_testing.browser import Arrival, Page

from ..conftest import ISSUER, RESOURCE_A
from ..flow import (
    CALLBACK,
    approve_and_sign_in,
    approved_client,
    assert_error_page,
    assert_error_redirect,
    browser_for,
    new_request,
    query,
    register,
)
from ..operator_clients import add_client

EVIL = "https://evil.example/landing"


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await register(auth_client))["client_id"])


@pytest.fixture
async def approved_client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await approved_client(auth_client))["client_id"])


@pytest.fixture
async def attacker_client_id(auth_client: httpx.AsyncClient) -> str:
    """What an attacker registers to bounce people to their page through this server's address."""
    registered = await register(auth_client, redirect_uris=[EVIL], client_name="Totally legit")
    return str(registered["client_id"])


# Each error is found before consent; each request is one an attacker can build by hand.
PRE_CONSENT_ERRORS: dict[str, tuple[dict[str, str | None], str]] = {
    "invalid_scope": ({"scope": "no-such-scope"}, "invalid_scope"),
    "invalid_target": ({"resource": "https://evil.example/mcp"}, "invalid_target"),
    "invalid_request": ({"code_challenge": None}, "invalid_request"),
    "unsupported_response_type": ({"response_type": "token"}, "unsupported_response_type"),
    "login_required": ({"prompt": "none"}, "login_required"),
}


def assert_page_with_link(response: httpx.Response, redirect_uri: str, error: str, state: str) -> None:
    """A page for the person, no redirect, and a link to the client's answer they may follow."""
    assert_error_page(response)
    assert error in response.text
    link = response.text.split('id="continue"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    assert link.replace("&amp;", "&").startswith(redirect_uri + "?")
    params = query(link.replace("&amp;", "&"))
    assert (params["error"], params["state"], params["iss"]) == (error, state, ISSUER)


@pytest.mark.parametrize("case", PRE_CONSENT_ERRORS.values(), ids=PRE_CONSENT_ERRORS.keys())
async def test_dcr_client_nobody_approved_cannot_bounce_people_to_its_redirect_uri(
    auth_client: httpx.AsyncClient, attacker_client_id: str, case: tuple[dict[str, str | None], str]
) -> None:
    overrides, error = case
    request = new_request(attacker_client_id, redirect_uri=EVIL)
    response = await auth_client.get(request.url(**overrides))
    assert_page_with_link(response, EVIL, error, request.state)


async def test_the_same_errors_redirect_once_a_user_has_approved_the_client(
    auth_client: httpx.AsyncClient, approved_client_id: str
) -> None:
    for overrides, error in PRE_CONSENT_ERRORS.values():
        if overrides.get("prompt") == "none":
            error = "consent_required"  # the approver is signed in here, and approved other scopes than these
        request = new_request(approved_client_id)
        assert_error_redirect(await auth_client.get(request.url(**overrides)), CALLBACK, error, request.state)


async def test_a_persons_own_denial_still_redirects_for_a_client_nobody_approved(
    auth_client: httpx.AsyncClient, attacker_client_id: str
) -> None:
    browser = browser_for(auth_client, "https://evil.example")
    request = new_request(attacker_client_id, redirect_uri=EVIL)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page), consent
    denied = await browser.submit(consent, {"decision": "deny"})
    assert isinstance(denied, Arrival), denied
    assert denied.url.startswith(EVIL + "?")
    assert {key: query(denied.url)[key] for key in ("error", "state", "iss")} == {
        "error": "access_denied",
        "state": request.state,
        "iss": ISSUER,
    }


async def test_a_pre_registered_clients_errors_still_redirect(auth_client: httpx.AsyncClient) -> None:
    # The operator vouches for a pre-registered client's redirect URIs (`mcp-auth clients add`).
    client_id, _ = await add_client(
        auth_client,
        origin="preregistered",
        redirect_uris=[CALLBACK],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        client_name="Operator's client",
    )
    request = new_request(client_id)
    response = await auth_client.get(request.url(resource="https://evil.example/mcp"))
    assert_error_redirect(response, CALLBACK, "invalid_target", request.state)


async def test_approval_by_one_user_is_what_lifts_the_page(auth_client: httpx.AsyncClient) -> None:
    registered = await register(auth_client)
    request = new_request(registered["client_id"])
    assert_error_page(await auth_client.get(request.url(scope="no-such-scope")))
    answer = await approve_and_sign_in(
        browser_for(auth_client), new_request(registered["client_id"], resource=RESOURCE_A).url(), "first"
    )
    assert "code" in answer
    assert_error_redirect(
        await auth_client.get(request.url(scope="no-such-scope")), CALLBACK, "invalid_scope", request.state
    )


async def test_an_attacker_approving_their_own_dcr_client_turns_the_server_back_into_an_open_redirector(
    auth_client: httpx.AsyncClient, attacker_client_id: str
) -> None:
    # All allow-lists empty (the tests' settings): anyone who can sign in upstream is admitted.
    own = new_request(attacker_client_id, redirect_uri=EVIL)
    assert "code" in await approve_and_sign_in(browser_for(auth_client, EVIL), own.url(), "mallory")
    auth_client.cookies.clear()  # from here on: the victim's browser, which never approved anything
    request = new_request(attacker_client_id, redirect_uri=EVIL)
    response = await auth_client.get(request.url(scope="no-such-scope"))
    assert_page_with_link(response, EVIL, "invalid_scope", request.state)


async def test_repeated_client_id_is_shown_a_page_not_redirected(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    url = new_request(client_id).url() + "&client_id=someone-else"
    assert_error_page(await auth_client.get(url))


async def test_repeated_redirect_uri_smuggling_an_evil_one_is_shown_a_page_not_redirected(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    for url in (
        new_request(client_id).url() + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        f"{ISSUER}/authorize?redirect_uri=https%3A%2F%2Fevil.example%2Fcb&"
        + new_request(client_id).url().split("?", 1)[1],
    ):
        response = await auth_client.get(url)
        assert_error_page(response)
        assert "evil.example" not in response.text


async def test_unknown_client_with_an_attacker_redirect_uri_is_shown_a_page_not_redirected(
    auth_client: httpx.AsyncClient,
) -> None:
    request = new_request("attacker-made-this-up", redirect_uri="https://evil.example/cb")
    response = await auth_client.get(request.url(response_type="token"))
    assert_error_page(response)
    assert "evil.example" not in response.text


async def test_missing_client_id_is_shown_a_page_not_redirected(auth_client: httpx.AsyncClient) -> None:
    assert_error_page(await auth_client.get(new_request("x").url(client_id=None)))


async def test_overlong_client_id_is_shown_a_page_not_redirected(auth_client: httpx.AsyncClient) -> None:
    assert_error_page(await auth_client.get(new_request("x" * 5000).url()))


@pytest.mark.parametrize("client_id", ["\x00", "abc\x00def"], ids=["nul", "embedded_nul"])
async def test_client_id_the_database_cannot_store_is_shown_a_page_not_a_500(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    assert_error_page(await auth_client.get(new_request(client_id).url()))


async def test_bad_redirect_uri_for_a_real_client_is_shown_a_page_not_redirected(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.get(new_request(client_id, redirect_uri="https://evil.example/cb").url())
    assert_error_page(response)


async def test_repeated_state_after_verification_is_an_error_redirect_to_the_registered_uri(
    auth_client: httpx.AsyncClient, approved_client_id: str
) -> None:
    # Once client and redirect URI are verified, errors do go back to the client (RFC 6749 §4.1.2.1).
    request = new_request(approved_client_id)
    response = await auth_client.get(request.url() + "&state=second")
    assert_error_redirect(response, CALLBACK, "invalid_request", "second")  # the value a parser reads


@pytest.mark.parametrize("state", ["\x00", "a" * 4000], ids=["nul", "longer_than_stored"])
async def test_state_the_database_cannot_store_is_an_error_redirect_not_a_500(
    auth_client: httpx.AsyncClient, approved_client_id: str, state: str
) -> None:
    request = new_request(approved_client_id, state=state)
    response = await auth_client.get(request.url())
    assert_error_redirect(response, CALLBACK, "invalid_request", state)
