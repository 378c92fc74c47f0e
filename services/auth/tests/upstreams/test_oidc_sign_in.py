"""Sign-in through a generic OpenID Connect provider (the stand-in), and every way it must be refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival, Page
from mcp_testing.oidc_standin import OidcStandIn
from mcp_testing.oidc_state import OidcState, new_signing_key
from mcp_testing.standin_http import FailureMode

from ..flow import Database, assert_oauth_error, new_request, query, redeem, refresh, token_claims
from .oidc_flow import (
    assert_refused,
    exchange,
    expire_upstream_token,
    forget_upstream_check,
    hs256_with_public_key,
    linked_identity,
    oidc_service,
    resource_server,
    shifted,
    sign_in,
    tokens_after_sign_in,
    unsigned,
)

MakeSettings = Callable[..., AuthSettings]


async def test_sign_in_through_the_provider_s_form(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    user = oidc_provider.state.add_user("alice", name="Alice Liddell")
    async with oidc_service(make_settings, oidc_provider) as service:
        signed_in = await sign_in(service, login=None)
        form = signed_in.outcome
        assert isinstance(form, Page), form
        assert form.url.startswith(oidc_provider.issuer), form.url
        arrival = await signed_in.browser.submit(form, {"login": "alice", "decision": "allow"})
        assert isinstance(arrival, Arrival), arrival
        response = await redeem(service.client, signed_in.request, query(arrival.url)["code"])
        assert response.status_code == 200, response.text
        claims = await token_claims(service.client, response.json()["access_token"])

    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Liddell"
    stored = await linked_identity(database, user.sub)
    assert (stored.provider, stored.user_id) == ("oidc", claims["sub"])
    authorize = oidc_provider.state.requests_to("/authorize")[0].query
    assert authorize["code_challenge_method"] == "S256"
    assert len(authorize["code_challenge"]) == 43
    assert len(authorize["nonce"]) >= 32
    assert authorize["scope"] == "openid email profile"
    assert "prompt" not in authorize  # no offline_access asked, so no forced consent
    token_call = oidc_provider.state.requests_to("/token")[0]
    assert token_call.headers["authorization"] == "Basic <redacted>"  # client_secret_basic


async def test_the_provider_s_refusal_sends_the_client_access_denied(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    oidc_provider.state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        signed_in = await sign_in(service, login=None)
        assert isinstance(signed_in.outcome, Page)
        after = await signed_in.browser.submit(signed_in.outcome, {"login": "alice", "decision": "deny"})
    assert_refused(after, "access_denied")


# --- ID token attacks (OIDC Core §3.1.3.7) ---------------------------------------------------------


def _sign(state: OidcState, claims: dict[str, Any]) -> str:
    return state.signing_key.sign(claims)


FORGERIES: dict[str, Callable[[OidcState, dict[str, Any]], str]] = {
    "wrong_issuer": lambda s, c: _sign(s, {**c, "iss": "https://evil.example"}),
    "wrong_audience": lambda s, c: _sign(s, {**c, "aud": "another-client", "azp": "another-client"}),
    "several_audiences_without_azp": lambda s, c: _sign(
        s, {key: value for key, value in c.items() if key != "azp"} | {"aud": [c["aud"], "another"]}
    ),
    "another_authorized_party": lambda s, c: _sign(s, {**c, "azp": "another-client"}),
    "expired": lambda s, c: _sign(s, shifted(c, -3600)),
    "issued_in_the_future": lambda s, c: _sign(s, shifted(c, 3600)),
    "wrong_nonce": lambda s, c: _sign(s, {**c, "nonce": "not-the-one-we-sent"}),
    "no_nonce": lambda s, c: _sign(s, {key: value for key, value in c.items() if key != "nonce"}),
    "no_subject": lambda s, c: _sign(s, {key: value for key, value in c.items() if key != "sub"}),
    "alg_none": lambda s, c: unsigned(c),
    "hs256_with_the_public_key": lambda s, c: hs256_with_public_key(c, s.signing_key),
    "unknown_kid": lambda s, c: new_signing_key("RS256").sign(c),
    "another_key_under_a_published_kid": lambda s, c: new_signing_key("RS256").sign(
        c, headers={"kid": s.signing_key.kid}
    ),
    "not_a_jwt": lambda s, c: "definitely.not.a-jwt",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_bad_id_token_refuses_the_sign_in(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, forgery: str
) -> None:
    state = oidc_provider.state
    state.add_user("mallory")
    state.forge_id_token = lambda claims: FORGERIES[forgery](state, claims)
    async with oidc_service(make_settings, oidc_provider) as service:
        answer = assert_refused((await sign_in(service, "mallory")).outcome, "access_denied")
    assert "ID token" in answer["error_description"]


async def test_an_id_token_from_an_earlier_sign_in_is_refused(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    """§15.5.2: the nonce binds the ID token to one sign-in; replaying an old one fails."""
    state = oidc_provider.state
    state.add_user("alice")
    captured: list[str] = []

    def capture(claims: dict[str, Any]) -> str:
        captured.append(state.signing_key.sign(claims))
        return captured[0]  # the first sign-in's token, every time

    state.forge_id_token = capture
    async with oidc_service(make_settings, oidc_provider) as service:
        assert isinstance((await sign_in(service, "alice")).outcome, Arrival)
        assert_refused((await sign_in(service, "alice")).outcome, "access_denied")


async def test_es256_signed_id_tokens_are_accepted(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    oidc_provider.state.signing_alg = "ES256"
    oidc_provider.state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        assert isinstance((await sign_in(service, "alice")).outcome, Arrival)


async def test_an_algorithm_the_provider_does_not_announce_is_refused(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    state = oidc_provider.state
    state.signing_algs_override = ["RS256"]
    state.signing_alg = "ES256"  # signs with a published ES256 key the discovery document never announced
    state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        assert_refused((await sign_in(service, "alice")).outcome, "access_denied")


async def test_a_discovery_document_naming_another_issuer_stops_the_sign_in(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    """OIDC Discovery §4.3: the issuer in the document must be exactly the one configured."""
    oidc_provider.state.issuer_override = oidc_provider.issuer + "/"
    oidc_provider.state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        assert_refused((await sign_in(service, "alice")).outcome, "temporarily_unavailable")
    assert not oidc_provider.state.requests_to("/authorize")


# --- allow-lists ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "email", "verified", "admitted"),
    [
        ({"auth_allowed_users": "alice@example.com"}, "Alice@Example.com", True, True),
        ({"auth_allowed_users": "alice@example.com"}, "alice@example.com", False, False),
        ({"auth_allowed_domains": "example.com"}, "alice@example.com", True, True),
        ({"auth_allowed_domains": "example.com"}, "alice@example.com", False, False),
        ({"auth_allowed_domains": "example.com"}, "alice@example.com.evil.test", True, False),
        ({"auth_allowed_domains": "corp.test", "auth_allowed_users": "bob@example.com"}, None, True, False),
    ],
)
async def test_allow_lists_admit_only_verified_emails_they_name(
    make_settings: MakeSettings,
    oidc_provider: OidcStandIn,
    allow: dict[str, str],
    email: str | None,
    verified: bool,
    admitted: bool,
) -> None:
    oidc_provider.state.add_user("alice", email=email, email_verified=verified)
    async with oidc_service(make_settings, oidc_provider, "oidc", **allow) as service:
        outcome = (await sign_in(service, "alice")).outcome
    if admitted:
        assert isinstance(outcome, Arrival), outcome
    else:
        assert_refused(outcome, "access_denied")


async def test_the_allowed_users_list_takes_a_subject(
    make_settings: MakeSettings, oidc_provider: OidcStandIn
) -> None:
    user = oidc_provider.state.add_user("alice", email_verified=False)
    oidc_provider.state.add_user("bob")
    async with oidc_service(make_settings, oidc_provider, auth_allowed_users=user.sub) as service:
        assert isinstance((await sign_in(service, "alice")).outcome, Arrival)
        assert_refused((await sign_in(service, "bob")).outcome, "access_denied")


# --- the provider failing ---------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["discovery", "jwks", "token"])
@pytest.mark.parametrize("mode", ["5xx", "timeout", "junk"])
async def test_a_failing_provider_sends_the_client_temporarily_unavailable(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, group: Any, mode: FailureMode
) -> None:
    oidc_provider.state.timeout_seconds = 5.0  # longer than the service waits
    oidc_provider.state.add_user("alice")
    oidc_provider.state.fail(group, mode)
    async with oidc_service(make_settings, oidc_provider, auth_upstream_timeout_seconds=0.5) as service:
        assert_refused((await sign_in(service, "alice")).outcome, "temporarily_unavailable")
        oidc_provider.state.recover()
        assert isinstance((await sign_in(service, "alice")).outcome, Arrival)  # nothing cached the failure


# --- upstream tokens: refresh before a tool gets one, and re-checks on refresh ------------------------


async def test_token_exchange_renews_an_expired_upstream_token(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    state = oidc_provider.state
    user = state.add_user("alice")
    scopes = "openid email profile offline_access"
    async with oidc_service(make_settings, oidc_provider, oidc_scopes=scopes) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        assert state.requests_to("/authorize")[0].query["prompt"] == "consent"  # OIDC Core §11
        server = await resource_server(database)

        fresh = await exchange(service, server, tokens["access_token"])
        assert fresh.status_code == 200, fresh.text
        first = fresh.json()["access_token"]
        assert state.live_access_token(first) is not None
        assert 3500 < fresh.json()["expires_in"] <= 3600

        for _ in range(2):  # the provider rotates refresh tokens: each renewal must store the new one
            await expire_upstream_token(database, user.sub)
            renewed = await exchange(service, server, tokens["access_token"])
            assert renewed.status_code == 200, renewed.text
            assert renewed.json()["access_token"] != first
            assert state.live_access_token(renewed.json()["access_token"]) is not None
        assert len(state.refresh_tokens) == 3
        assert sum(not t.revoked for t in state.refresh_tokens.values()) == 1


async def test_token_exchange_is_invalid_grant_once_the_provider_revoked_the_refresh_token(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    user = oidc_provider.state.add_user("alice")
    scopes = "openid email offline_access"
    async with oidc_service(make_settings, oidc_provider, oidc_scopes=scopes) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        server = await resource_server(database)
        oidc_provider.state.revoke_refresh_tokens("alice")
        await expire_upstream_token(database, user.sub)
        assert_oauth_error(await exchange(service, server, tokens["access_token"]), "invalid_grant")


async def test_without_a_refresh_token_an_expired_upstream_token_is_never_handed_out(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    user = oidc_provider.state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        server = await resource_server(database)
        await expire_upstream_token(database, user.sub)
        body = assert_oauth_error(await exchange(service, server, tokens["access_token"]), "invalid_grant")
    assert "expired" in body["error_description"]


async def test_token_exchange_names_the_oidc_upstream_as_audience(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    oidc_provider.state.add_user("alice")
    async with oidc_service(make_settings, oidc_provider) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        server = await resource_server(database)
        refused = await exchange(service, server, tokens["access_token"], audience="github")
        assert_oauth_error(refused, "invalid_target")


async def test_refresh_asks_the_provider_again_and_a_user_who_lost_access_is_cut_off(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    user = oidc_provider.state.add_user("alice")
    scopes = "openid email offline_access"
    async with oidc_service(
        make_settings, oidc_provider, oidc_scopes=scopes, auth_allowed_domains="example.com"
    ) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        await forget_upstream_check(database, user.sub)
        await expire_upstream_token(database, user.sub)  # the re-check renews the token first
        renewed = await refresh(service.client, tokens["client"], tokens["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        assert len(oidc_provider.state.requests_to("/userinfo")) == 1

        user.email = "alice@elsewhere.test"  # moved out of the allowed domain upstream
        await forget_upstream_check(database, user.sub)
        cut_off = await refresh(service.client, tokens["client"], renewed.json()["refresh_token"])
        assert_oauth_error(cut_off, "invalid_grant")


async def test_a_session_whose_upstream_token_died_signs_in_upstream_again(
    make_settings: MakeSettings, oidc_provider: OidcStandIn, database: Database
) -> None:
    # Without offline_access there is no upstream refresh token: once the upstream token expires, a code
    # minted from our session alone would fail its first refresh re-check, so the session stops counting.
    user = oidc_provider.state.add_user("ivy")
    async with oidc_service(make_settings, oidc_provider) as service:
        first = await sign_in(service, login="ivy")
        assert isinstance(first.outcome, Arrival), first.outcome
        client_id = first.registered["client_id"]
        again = await first.browser.open(new_request(client_id).url())  # a loopback client: the page
        assert isinstance(again, Page), again
        asked = len(oidc_provider.state.requests_to("/authorize"))
        assert isinstance(await first.browser.submit(again, {"decision": "approve"}), Arrival)  # remembered
        assert len(oidc_provider.state.requests_to("/authorize")) == asked  # the session sufficed
        await expire_upstream_token(database, user.sub)
        asked = len(oidc_provider.state.requests_to("/authorize"))
        consent = await first.browser.open(new_request(client_id).url())
        assert isinstance(consent, Page), consent
        arrival = await first.browser.submit(consent, {"decision": "approve"})
        assert isinstance(arrival, Arrival), arrival
        assert len(oidc_provider.state.requests_to("/authorize")) == asked + 1
