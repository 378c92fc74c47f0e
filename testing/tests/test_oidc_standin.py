"""The OIDC provider stand-in: discovery, the code flow with PKCE and nonce, refresh rules, failures."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from mcp_testing.oidc_standin import OidcStandIn
from mcp_testing.oidc_state import Client

CALLBACK = "http://127.0.0.1:9000/callback"
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def http(oidc_server: OidcStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=oidc_server.issuer, timeout=5) as client:
        yield client


def _discover(http: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = http.get("/.well-known/openid-configuration").json()
    return document


def _authorize(http: httpx.Client, client: Client, **params: str) -> dict[str, str]:
    """Sign in (auto_login) and return the query the provider redirected back with."""
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": "xyz",
        "nonce": "n-0S6_WzA2Mj",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **params,
    }
    response = http.get(urlsplit(_discover(http)["authorization_endpoint"]).path, params=query)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _token(http: httpx.Client, client: Client, **form: str) -> httpx.Response:
    return http.post("/token", data=form, auth=(client.client_id, client.client_secret))


def _redeem(http: httpx.Client, client: Client, code: str, verifier: str = VERIFIER) -> httpx.Response:
    return _token(
        http,
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=CALLBACK,
        code_verifier=verifier,
    )


def _signed_in(provider: OidcStandIn, http: httpx.Client, **params: str) -> tuple[Client, dict[str, Any]]:
    client = provider.state.add_client(CALLBACK)
    provider.state.add_user("alice", hd="corp.test")
    provider.state.auto_login = "alice"
    response = _redeem(http, client, _authorize(http, client, **params)["code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return client, body


def test_discovery_names_itself_and_its_keys(oidc_provider: OidcStandIn, http: httpx.Client) -> None:
    document = _discover(http)
    assert document["issuer"] == oidc_provider.issuer
    assert document["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    keys = http.get(urlsplit(document["jwks_uri"]).path).json()["keys"]
    assert {key["alg"] for key in keys} == {"RS256", "ES256"}
    assert all("d" not in key for key in keys)  # public halves only


def test_code_flow_gives_an_id_token_that_verifies_against_the_jwks(
    oidc_provider: OidcStandIn, http: httpx.Client
) -> None:
    client, body = _signed_in(oidc_provider, http)
    header = jwt.get_unverified_header(body["id_token"])
    jwks = http.get("/jwks").json()["keys"]
    key = jwt.PyJWK(next(k for k in jwks if k["kid"] == header["kid"]))
    claims = jwt.decode(
        body["id_token"], key, algorithms=["RS256"], audience=client.client_id, issuer=oidc_provider.issuer
    )
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sub"] == oidc_provider.state.users["alice"].sub
    assert claims["email_verified"] is True
    assert "hd" not in claims  # a Google claim
    assert "refresh_token" not in body  # no offline_access asked
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["sub"] == claims["sub"]
    assert info["preferred_username"] == "alice"


def test_pkce_is_checked_and_a_code_works_once(oidc_provider: OidcStandIn, http: httpx.Client) -> None:
    client = oidc_provider.state.add_client(CALLBACK)
    oidc_provider.state.add_user("alice")
    oidc_provider.state.auto_login = "alice"
    code = _authorize(http, client)["code"]
    assert _redeem(http, client, code, verifier="x" * 43).json()["error"] == "invalid_grant"
    assert _redeem(http, client, code).json()["error"] == "invalid_grant"  # spent by the failed attempt


def test_a_redirect_uri_not_registered_is_a_page_not_a_redirect(
    oidc_provider: OidcStandIn, http: httpx.Client
) -> None:
    client = oidc_provider.state.add_client(CALLBACK)
    response = http.get(
        "/authorize",
        params={
            "client_id": client.client_id,
            "redirect_uri": "https://evil.test/cb",
            "response_type": "code",
        },
    )
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(("params", "offline"), [({}, False), ({"prompt": "consent"}, True)])
def test_generic_offline_access_needs_prompt_consent(
    oidc_provider: OidcStandIn, http: httpx.Client, params: dict[str, str], offline: bool
) -> None:
    _, body = _signed_in(oidc_provider, http, scope="openid offline_access", **params)
    assert ("refresh_token" in body) is offline


def test_generic_refresh_rotates_and_revocation_ends_it(
    oidc_provider: OidcStandIn, http: httpx.Client
) -> None:
    client, body = _signed_in(oidc_provider, http, scope="openid offline_access", prompt="consent")
    renewed = _token(http, client, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert renewed["refresh_token"] != body["refresh_token"]
    reused = _token(http, client, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    oidc_provider.state.revoke_refresh_tokens("alice")
    revoked = _token(http, client, grant_type="refresh_token", refresh_token=renewed["refresh_token"])
    assert revoked.json()["error"] == "invalid_grant"
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert userinfo.status_code == 401


def test_google_gives_a_refresh_token_on_first_consent_or_with_prompt_consent(
    google_provider: OidcStandIn, http: httpx.Client
) -> None:
    client, first = _signed_in(google_provider, http, access_type="offline")
    assert "refresh_token" in first
    claims = jwt.decode(first["id_token"], options={"verify_signature": False})
    assert claims["hd"] == "corp.test"
    again = _redeem(http, client, _authorize(http, client, access_type="offline")["code"]).json()
    assert "refresh_token" not in again  # already consented: Google keeps quiet
    forced = _authorize(http, client, access_type="offline", prompt="consent")
    assert "refresh_token" in _redeem(http, client, forced["code"]).json()
    online = _authorize(http, client, prompt="consent")
    assert "refresh_token" not in _redeem(http, client, online["code"]).json()


def test_google_refresh_keeps_the_refresh_token_and_includes_granted_scopes(
    google_provider: OidcStandIn, http: httpx.Client
) -> None:
    client, body = _signed_in(google_provider, http, access_type="offline", scope="openid drive")
    renewed = _token(http, client, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert "refresh_token" not in renewed
    assert _token(http, client, grant_type="refresh_token", refresh_token=body["refresh_token"]).is_success
    widened = _authorize(http, client, scope="openid gmail", include_granted_scopes="true")
    assert _redeem(http, client, widened["code"]).json()["scope"].split() == ["openid", "gmail", "drive"]
    discovery = _discover(http)
    assert urlsplit(discovery["authorization_endpoint"]).path == "/o/oauth2/v2/auth"


def test_client_authentication_is_required_at_the_token_endpoint(
    oidc_provider: OidcStandIn, http: httpx.Client
) -> None:
    client = oidc_provider.state.add_client(CALLBACK)
    response = http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    posted = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    assert posted.json()["error"] == "invalid_grant"  # authenticated by client_secret_post


def test_failures_are_per_route_group_and_the_log_hides_credentials(
    oidc_provider: OidcStandIn, http: httpx.Client
) -> None:
    oidc_provider.state.fail("jwks", "5xx")
    assert http.get("/jwks").status_code == 502
    assert http.get("/.well-known/openid-configuration").status_code == 200
    oidc_provider.state.fail("discovery", "junk")
    with pytest.raises(json.JSONDecodeError):
        http.get("/.well-known/openid-configuration").json()
    oidc_provider.state.recover()
    http.get("/userinfo", headers={"Authorization": "Bearer at-secret"})
    logged = oidc_provider.state.requests_to("/userinfo")[0]
    assert logged.headers["authorization"] == "Bearer <redacted>"
    assert [entry.path for entry in oidc_provider.state.requests][:2] == [
        "/jwks",
        "/.well-known/openid-configuration",
    ]
