"""Settings of the google and oidc upstreams: selection, credentials, and lists that would be ignored."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_auth_server.settings import SettingsError, load_settings

SECRET = "s" * 40
PRODUCTION = {"auth_issuer": "https://auth.example.com", "auth_secret_key": SECRET}
GOOGLE = {"google_client_id": "123.apps.googleusercontent.com", "google_client_secret": "g-secret"}
OIDC = {
    "oidc_issuer": "https://login.example.com/",
    "oidc_client_id": "mcp",
    "oidc_client_secret": "o-secret",
}


def test_google_is_chosen_by_its_client_id_with_google_defaults() -> None:
    settings = load_settings(**PRODUCTION, **GOOGLE, google_hosted_domains="corp.test, sub.test")
    assert settings.auth_upstream == "google"
    assert settings.google_issuer == "https://accounts.google.com"
    assert settings.google_scopes == "openid email profile"
    assert settings.google_hosted_domains == ["corp.test", "sub.test"]


def test_oidc_is_chosen_by_its_client_id_and_the_issuer_is_kept_exactly() -> None:
    settings = load_settings(**PRODUCTION, **OIDC, auth_allowed_domains="example.com,partner.test")
    assert settings.auth_upstream == "oidc"
    assert settings.oidc_issuer == "https://login.example.com/"  # compared byte for byte with discovery
    assert settings.auth_allowed_domains == ["example.com", "partner.test"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auth_upstream": "google"}, "GOOGLE_CLIENT_ID: the google upstream needs GOOGLE_CLIENT_ID and"),
        (
            {"auth_upstream": "google", "google_client_id": "x"},
            "GOOGLE_CLIENT_SECRET: the google upstream needs",
        ),
        (
            {"auth_upstream": "oidc", "oidc_client_id": "x", "oidc_client_secret": "y"},
            "OIDC_ISSUER: the oidc upstream needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET",
        ),
        ({**GOOGLE, "github_client_id": "gh"}, "AUTH_UPSTREAM: set it; client ids for github and google"),
        ({**OIDC, "oidc_issuer": "http://login.example.com"}, "OIDC_ISSUER: must use https"),
        ({**OIDC, "oidc_issuer": "login.example.com"}, "OIDC_ISSUER: must be an absolute"),
        ({**OIDC, "oidc_scopes": "email profile"}, "OIDC_SCOPES: must include openid"),
        ({**GOOGLE, "google_scopes": "email"}, "GOOGLE_SCOPES: must include openid"),
        ({**GOOGLE, "auth_allowed_orgs": "acme"}, "AUTH_ALLOWED_ORGS: only the github upstream"),
        ({**OIDC, "auth_allowed_teams": "acme/x"}, "AUTH_ALLOWED_TEAMS: only the github upstream"),
        ({**OIDC, "google_hosted_domains": "corp.test"}, "GOOGLE_HOSTED_DOMAINS: applies to the google"),
        (
            {"github_client_id": "gh", "github_client_secret": "s", "auth_allowed_domains": "x.test"},
            "AUTH_ALLOWED_DOMAINS: applies to the google and oidc upstreams only",
        ),
    ],
)
def test_misconfiguration_is_one_line_naming_the_variable(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(**PRODUCTION, **values)
    assert str(refused.value).startswith(message), str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_loopback_issuer_may_point_google_at_a_stand_in() -> None:
    settings = load_settings(
        auth_issuer="http://127.0.0.1:9000", **GOOGLE, google_issuer="http://127.0.0.1:9911"
    )
    assert (settings.auth_upstream, settings.google_issuer) == ("google", "http://127.0.0.1:9911")
