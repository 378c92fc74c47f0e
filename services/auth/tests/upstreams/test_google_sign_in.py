"""Sign-in through Google (the stand-in's Google flavour): offline access, hosted domains, verified emails."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcp_auth_server.settings import AuthSettings
from mcp_testing.browser import Arrival
from mcp_testing.oidc_standin import OidcStandIn

from ..flow import Database, assert_oauth_error, token_claims
from .oidc_flow import (
    assert_refused,
    exchange,
    expire_upstream_token,
    linked_identity,
    oidc_service,
    resource_server,
    sign_in,
    tokens_after_sign_in,
)

MakeSettings = Callable[..., AuthSettings]
GOOGLE_AUTHORIZE = "/o/oauth2/v2/auth"
DRIVE = "https://www.googleapis.com/auth/drive.readonly"


async def test_sign_in_asks_for_offline_access_and_stores_a_refresh_token(
    make_settings: MakeSettings, google_provider: OidcStandIn, database: Database
) -> None:
    user = google_provider.state.add_user("alice", email="alice@corp.test", hd="corp.test")
    scopes = f"openid email profile {DRIVE}"
    async with oidc_service(make_settings, google_provider, "google", google_scopes=scopes) as service:
        tokens = await tokens_after_sign_in(service, "alice")
        claims = await token_claims(service.client, tokens["access_token"])
        # A returning user signing in again (a new browser) is asked for consent again, and so
        # Google hands over a refresh token again.
        await tokens_after_sign_in(service, "alice")

    assert claims["email"] == "alice@corp.test"
    assert claims["preferred_username"] == "alice@corp.test"  # Google has no user names
    first, again = (logged.query for logged in google_provider.state.requests_to(GOOGLE_AUTHORIZE))
    assert first["access_type"] == "offline"
    assert first["prompt"] == "consent"
    assert first["include_granted_scopes"] == "true"
    assert first["scope"] == scopes
    assert first["code_challenge_method"] == "S256"
    assert "nonce" in first
    assert "hd" not in first  # no hosted domain configured
    assert again["prompt"] == "consent"
    assert len(google_provider.state.refresh_tokens) == 2
    stored = await linked_identity(database, user.sub)
    assert stored.provider == "google"
    assert stored.refresh_token_encrypted is not None
    assert DRIVE in (stored.scopes or "")


@pytest.mark.parametrize(
    ("hd", "email", "admitted"),
    [
        ("corp.test", "alice@corp.test", True),
        ("subsidiary.test", "alice@subsidiary.test", True),
        ("other.test", "alice@other.test", False),
        # A consumer Google account whose address is on the company's domain: no `hd`, not admitted.
        (None, "alice@corp.test", False),
    ],
)
async def test_hosted_domains_are_enforced_on_the_signed_hd_claim(
    make_settings: MakeSettings, google_provider: OidcStandIn, hd: str | None, email: str, admitted: bool
) -> None:
    google_provider.state.add_user("alice", email=email, hd=hd)
    async with oidc_service(
        make_settings, google_provider, "google", google_hosted_domains="corp.test,subsidiary.test"
    ) as service:
        outcome = (await sign_in(service, "alice")).outcome
    # The request only hints (the stand-in, like Google, lets any account through): "*" for several.
    assert google_provider.state.requests_to(GOOGLE_AUTHORIZE)[0].query["hd"] == "*"
    if admitted:
        assert isinstance(outcome, Arrival), outcome
    else:
        assert_refused(outcome, "access_denied")


async def test_one_hosted_domain_is_sent_as_the_hint(
    make_settings: MakeSettings, google_provider: OidcStandIn
) -> None:
    google_provider.state.add_user("alice", email="alice@corp.test", hd="corp.test")
    restricted = {"google_hosted_domains": "corp.test"}
    async with oidc_service(make_settings, google_provider, "google", **restricted) as svc:
        assert isinstance((await sign_in(svc, "alice")).outcome, Arrival)
    assert google_provider.state.requests_to(GOOGLE_AUTHORIZE)[0].query["hd"] == "corp.test"


async def test_an_unverified_email_is_refused_even_without_allow_lists(
    make_settings: MakeSettings, google_provider: OidcStandIn
) -> None:
    google_provider.state.add_user("alice", email_verified=False)
    async with oidc_service(make_settings, google_provider, "google") as service:
        answer = assert_refused((await sign_in(service, "alice")).outcome, "access_denied")
    assert "not verified" in answer["error_description"]


async def test_allowed_domains_apply_to_google_accounts(
    make_settings: MakeSettings, google_provider: OidcStandIn
) -> None:
    google_provider.state.add_user("alice", email="alice@gmail.com")
    google_provider.state.add_user("bob", email="bob@partner.test")
    allowed = {"auth_allowed_domains": "partner.test"}
    async with oidc_service(make_settings, google_provider, "google", **allowed) as svc:
        assert_refused((await sign_in(svc, "alice")).outcome, "access_denied")
        assert isinstance((await sign_in(svc, "bob")).outcome, Arrival)


async def test_google_s_schemeless_issuer_is_accepted_in_id_tokens(
    make_settings: MakeSettings, google_provider: OidcStandIn
) -> None:
    """Google documents `accounts.google.com` as well as `https://accounts.google.com` for `iss`."""
    state = google_provider.state
    state.add_user("alice")
    schemeless = google_provider.issuer.split("://", 1)[1]
    state.forge_id_token = lambda claims: state.signing_key.sign({**claims, "iss": schemeless})
    async with oidc_service(make_settings, google_provider, "google") as service:
        assert isinstance((await sign_in(service, "alice")).outcome, Arrival)


async def test_a_tool_gets_a_renewed_google_token_and_the_refresh_token_is_kept(
    make_settings: MakeSettings, google_provider: OidcStandIn, database: Database
) -> None:
    state = google_provider.state
    user = state.add_user("alice")
    async with oidc_service(make_settings, google_provider, "google") as service:
        tokens = await tokens_after_sign_in(service, "alice")
        server = await resource_server(database)
        stored_before = await linked_identity(database, user.sub)
        await expire_upstream_token(database, user.sub)

        renewed = await exchange(service, server, tokens["access_token"], audience="google")
        assert renewed.status_code == 200, renewed.text
        assert state.live_access_token(renewed.json()["access_token"]) is not None
        assert renewed.json()["expires_in"] > 3500
        again = await exchange(service, server, tokens["access_token"], audience="google")
        assert again.json()["access_token"] == renewed.json()["access_token"]  # still fresh: not renewed

    # Google does not rotate refresh tokens and leaves them out of the refresh answer: ours is kept.
    assert len(state.refresh_tokens) == 1
    assert len(state.access_tokens) == 2
    stored_after = await linked_identity(database, user.sub)
    assert stored_after.refresh_token_encrypted is not None
    assert stored_after.access_token_encrypted != stored_before.access_token_encrypted


async def test_a_revoked_google_grant_is_invalid_grant_at_token_exchange(
    make_settings: MakeSettings, google_provider: OidcStandIn, database: Database
) -> None:
    user = google_provider.state.add_user("alice")
    async with oidc_service(make_settings, google_provider, "google") as service:
        tokens = await tokens_after_sign_in(service, "alice")
        server = await resource_server(database)
        google_provider.state.revoke_refresh_tokens("alice")  # the user removed the app at Google
        await expire_upstream_token(database, user.sub)
        refused = await exchange(service, server, tokens["access_token"], audience="google")
    body = assert_oauth_error(refused, "invalid_grant")
    assert "sign in again" in body["error_description"]
