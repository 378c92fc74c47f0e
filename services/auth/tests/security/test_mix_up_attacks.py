"""Mix-up attacks: every authorization response names its issuer, success and error alike.

Covers RFC 9207 §2 (`iss` in every authorization response, errors included) and §2.4
(advertised in metadata), RFC 9700 §4.4 (mix-up), and RFC 6749 §4.1.2 / §4.1.2.1 (`state`
returned unchanged) for each error the authorization endpoint can send to a client.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_testing.browser import Arrival, Page

from ..conftest import ISSUER
from ..flow import (
    CALLBACK,
    CLAUDE_CALLBACK,
    approve_and_sign_in,
    approved_client,
    assert_error_redirect,
    browser_for,
    new_request,
    register,
)


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await approved_client(auth_client))["client_id"])


def issuers(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get("iss", [])


async def test_metadata_promises_iss_on_authorization_responses(auth_client: httpx.AsyncClient) -> None:
    document = (await auth_client.get("/.well-known/oauth-authorization-server")).json()
    assert document["authorization_response_iss_parameter_supported"] is True


async def test_successful_authorization_response_names_the_issuer_once(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "iss-success")
    assert answer["iss"] == ISSUER
    assert answer["state"] == request.state


async def test_remembered_consent_response_names_the_issuer_once(auth_client: httpx.AsyncClient) -> None:
    # Silent answers go only to clients whose https redirect URI assures who they are.
    client_id = str((await register(auth_client, redirect_uris=[CLAUDE_CALLBACK]))["client_id"])
    browser = browser_for(auth_client, CLAUDE_CALLBACK)
    await approve_and_sign_in(
        browser, new_request(client_id, redirect_uri=CLAUDE_CALLBACK).url(), "iss-returning"
    )
    arrival = await browser.open(new_request(client_id, redirect_uri=CLAUDE_CALLBACK).url())
    assert isinstance(arrival, Arrival)
    assert issuers(arrival.url) == [ISSUER]


async def test_access_denied_from_the_deny_button_names_the_issuer(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    browser = browser_for(auth_client)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page)
    form = consent.forms()[0]
    response = await auth_client.post(form.action, data={**form.fields, "decision": "deny"})
    assert_error_redirect(response, CALLBACK, "access_denied", request.state)
    assert response.status_code == 303


ERRORS = {
    "invalid_scope": ({"scope": "admin:everything"}, "invalid_scope"),
    "invalid_target": ({"resource": "https://evil.example/mcp"}, "invalid_target"),
    "unsupported_response_type": ({"response_type": "token"}, "unsupported_response_type"),
    "missing_response_type": ({"response_type": None}, "unsupported_response_type"),
    "pkce_missing": ({"code_challenge": None}, "invalid_request"),
    "pkce_plain": ({"code_challenge_method": "plain"}, "invalid_request"),
    # The approver is signed in here (tests/flow.py approved_client), but approved other scopes.
    "consent_required": ({"prompt": "none"}, "consent_required"),
}


@pytest.mark.parametrize(("overrides", "error"), ERRORS.values(), ids=ERRORS.keys())
async def test_error_response_names_the_issuer_and_returns_state(
    auth_client: httpx.AsyncClient, client_id: str, overrides: dict[str, str | None], error: str
) -> None:
    request = new_request(client_id)
    response = await auth_client.get(request.url(**overrides))
    params = assert_error_redirect(response, CALLBACK, error, request.state)
    assert issuers(response.headers["location"]) == [ISSUER]
    assert "code" not in params


async def test_consent_required_for_prompt_none_names_the_issuer(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    other = await approved_client(auth_client, client_name="Approved by someone else")
    browser = browser_for(auth_client)
    await approve_and_sign_in(browser, new_request(client_id).url(), "iss-prompt-none")
    request = new_request(other["client_id"])
    arrival = await browser.open(request.url(prompt="none"))
    assert isinstance(arrival, Arrival)
    params = {key: values[0] for key, values in parse_qs(urlsplit(arrival.url).query).items()}
    assert params["error"] == "consent_required"
    assert params["iss"] == ISSUER
    assert params["state"] == request.state


async def test_error_response_without_state_still_names_the_issuer(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.get(new_request(client_id).url(state=None, response_type="token"))
    assert_error_redirect(response, CALLBACK, "unsupported_response_type", None)
