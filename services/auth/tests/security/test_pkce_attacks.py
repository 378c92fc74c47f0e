"""PKCE: authorization code interception and injection, and downgrades around the challenge.

Covers RFC 7636 §4.3-§4.6 (S256 only, verifier checked against the stored challenge), OAuth 2.1
§4.1.1 and §7.5.1 (PKCE required, `plain` refused), RFC 9700 §2.1.1 and §4.8.2 (PKCE downgrade:
a code issued with a challenge is never redeemed without the matching verifier), and RFC 9207
(`iss` on the error responses).
"""

from __future__ import annotations

import httpx
import pytest

from ..flow import (
    CALLBACK,
    approve_and_sign_in,
    approved_client,
    assert_error_redirect,
    assert_oauth_error,
    browser_for,
    new_request,
    pkce_pair,
    redeem,
)

BAD_CHALLENGES = {
    "missing_challenge": {"code_challenge": None},
    "plain_method": {"code_challenge_method": "plain"},
    "missing_method": {"code_challenge_method": None},
    "lower_case_method": {"code_challenge_method": "s256"},
    "unknown_method": {"code_challenge_method": "S512"},
    "short_challenge": {"code_challenge": "abc"},
    "padded_challenge": {"code_challenge": "A" * 43 + "="},
    "non_base64url_challenge": {"code_challenge": "+" * 43},
}


@pytest.fixture
async def client_id(auth_client: httpx.AsyncClient) -> str:
    return str((await approved_client(auth_client))["client_id"])


@pytest.mark.parametrize("overrides", BAD_CHALLENGES.values(), ids=BAD_CHALLENGES.keys())
async def test_authorization_request_without_an_s256_challenge_gets_no_consent_page(
    auth_client: httpx.AsyncClient, client_id: str, overrides: dict[str, str | None]
) -> None:
    request = new_request(client_id)
    response = await auth_client.get(request.url(**overrides))
    assert_error_redirect(response, CALLBACK, "invalid_request", request.state)


async def redeemable_code(client: httpx.AsyncClient, client_id: str, username: str) -> tuple[str, str, str]:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(client), request.url(), username)
    return answer["code"], request.verifier, request.challenge


async def test_intercepted_code_with_a_wrong_verifier_is_refused(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-wrong")
    attacker_verifier, _ = pkce_pair()
    response = await redeem(auth_client, request, answer["code"], code_verifier=attacker_verifier)
    assert_oauth_error(response, "invalid_grant")


async def test_code_issued_with_s256_redeemed_without_a_verifier_is_refused(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-none")
    for verifier in (None, ""):
        response = await redeem(auth_client, request, answer["code"], code_verifier=verifier)
        assert_oauth_error(response, "invalid_request")


async def test_code_issued_with_s256_redeemed_with_the_challenge_as_a_plain_verifier_is_refused(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # The downgrade to `plain`: whoever saw the authorization request knows the challenge.
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-plain")
    response = await redeem(auth_client, request, answer["code"], code_verifier=request.challenge)
    assert_oauth_error(response, "invalid_grant")


async def test_verifier_outside_the_rfc7636_alphabet_is_refused(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-alphabet")
    for verifier in ("short", request.verifier + "!", "a" * 129, "é" * 43):
        response = await redeem(auth_client, request, answer["code"], code_verifier=verifier)
        assert_oauth_error(response, "invalid_grant")


async def test_verifier_sent_with_a_code_method_parameter_cannot_choose_plain_at_the_token_endpoint(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-method")
    response = await redeem(
        auth_client, request, answer["code"], code_verifier=request.challenge, code_challenge_method="plain"
    )
    assert_oauth_error(response, "invalid_grant")


async def test_correct_verifier_after_failed_guesses_still_redeems_exactly_once(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    # Failed guesses do not consume the code (the legitimate client is not locked out by an
    # attacker who saw it), but the verifier has 256 bits, so guessing is hopeless.
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "pkce-guesses")
    for _ in range(3):
        guess, _ = pkce_pair()
        assert_oauth_error(
            await redeem(auth_client, request, answer["code"], code_verifier=guess), "invalid_grant"
        )
    assert (await redeem(auth_client, request, answer["code"])).status_code == 200
    assert_oauth_error(await redeem(auth_client, request, answer["code"]), "invalid_grant")
