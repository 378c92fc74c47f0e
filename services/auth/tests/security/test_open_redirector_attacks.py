"""/authorize as an open redirector: errors found before the client and its redirect URI are verified.

Covers RFC 9700 §4.11.2 (authorization server as open redirector), RFC 6749 §3.1 (parameters
must not be repeated) and §4.1.2.1 (an invalid client or redirect URI is reported to the user,
not redirected), and robustness against input that the database would refuse.
"""

from __future__ import annotations

import httpx
import pytest

from ..conftest import ISSUER
from ..flow import CALLBACK, assert_error_page, assert_error_redirect, new_request, register


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await register(auth_client))["client_id"])


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
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # Once client and redirect URI are verified, errors do go back to the client (RFC 6749 §4.1.2.1).
    request = new_request(client_id)
    response = await auth_client.get(request.url() + "&state=second")
    assert_error_redirect(response, CALLBACK, "invalid_request", "second")  # the value a parser reads


@pytest.mark.parametrize("state", ["\x00", "a" * 4000], ids=["nul", "longer_than_stored"])
async def test_state_the_database_cannot_store_is_an_error_redirect_not_a_500(
    auth_client: httpx.AsyncClient, client_id: str, state: str
) -> None:
    request = new_request(client_id, state=state)
    response = await auth_client.get(request.url())
    assert_error_redirect(response, CALLBACK, "invalid_request", state)
