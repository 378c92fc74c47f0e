"""The stand-in's OAuth web flow answers like GitHub: sign-in page, redirects, token exchange, errors."""

import base64
import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import OAuthApp

CALLBACK = "http://127.0.0.1:9000/callback"


@pytest.fixture
def app(github: GitHubStandIn) -> OAuthApp:
    github.state.add_user("alice")
    return github.state.add_app(CALLBACK)


@pytest.fixture
def client(github: GitHubStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=github.base_url, timeout=5) as client:
        yield client


def _query(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _sign_in(client: httpx.Client, app: OAuthApp, **params: str) -> httpx.Response:
    form = {"client_id": app.client_id, "redirect_uri": CALLBACK, "state": "s1", "login": "alice", **params}
    return client.post("/login/oauth/authorize", data=form)


def _code(client: httpx.Client, app: OAuthApp, **params: str) -> str:
    response = _sign_in(client, app, **params)
    assert response.status_code == 302, response.text
    return _query(response.headers["location"])["code"]


def _exchange(client: httpx.Client, app: OAuthApp, code: str, **fields: str) -> dict[str, str]:
    form = {"client_id": app.client_id, "client_secret": app.client_secret, "code": code, **fields}
    response = client.post("/login/oauth/access_token", data=form, headers={"Accept": "application/json"})
    assert response.status_code == 200  # GitHub answers errors with 200 too
    answer: dict[str, str] = response.json()
    return answer


def test_authorize_shows_a_sign_in_form_carrying_the_request(client: httpx.Client, app: OAuthApp) -> None:
    params = {"client_id": app.client_id, "redirect_uri": CALLBACK, "state": "xyz<", "scope": "read:user"}
    response = client.get("/login/oauth/authorize", params=params)
    assert response.status_code == 200
    assert 'name="login"' in response.text
    assert 'name="state" value="xyz&lt;"' in response.text
    assert f'name="client_id" value="{app.client_id}"' in response.text


def test_signing_in_redirects_to_the_callback_with_code_and_state(
    client: httpx.Client, app: OAuthApp
) -> None:
    response = _sign_in(client, app)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    assert _query(location)["state"] == "s1"
    assert _query(location)["code"]


def test_auto_login_redirects_without_a_form(
    github: GitHubStandIn, client: httpx.Client, app: OAuthApp
) -> None:
    github.state.auto_login = "alice"
    params = {"client_id": app.client_id, "state": "s2"}
    response = client.get("/login/oauth/authorize", params=params)
    assert response.status_code == 302
    assert _query(response.headers["location"])["state"] == "s2"
    token = _exchange(client, app, _query(response.headers["location"])["code"])["access_token"]
    assert github.state.tokens[token].login == "alice"


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:9001/callback", "https://127.0.0.1:9000/callback", "http://127.0.0.1:9000/callbackx"],
)
def test_a_foreign_redirect_uri_gets_an_error_page(
    client: httpx.Client, app: OAuthApp, redirect_uri: str
) -> None:
    response = client.get(
        "/login/oauth/authorize", params={"client_id": app.client_id, "redirect_uri": redirect_uri}
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


def test_a_redirect_uri_below_the_callback_is_accepted(client: httpx.Client, app: OAuthApp) -> None:
    response = _sign_in(client, app, redirect_uri=CALLBACK + "/deeper")
    assert response.headers["location"].startswith(CALLBACK + "/deeper?")


def test_an_unknown_client_gets_an_error_page(client: httpx.Client, app: OAuthApp) -> None:
    response = client.get("/login/oauth/authorize", params={"client_id": "nope", "redirect_uri": CALLBACK})
    assert response.status_code == 400
    assert "location" not in response.headers


def test_cancel_redirects_with_access_denied(client: httpx.Client, app: OAuthApp) -> None:
    response = _sign_in(client, app, decision="cancel")
    assert _query(response.headers["location"])["error"] == "access_denied"
    assert _query(response.headers["location"])["state"] == "s1"


def test_an_unknown_login_stays_on_the_form(client: httpx.Client, app: OAuthApp) -> None:
    response = _sign_in(client, app, login="mallory")
    assert response.status_code == 401
    assert "Incorrect username" in response.text
    assert "location" not in response.headers


def test_the_code_buys_a_bearer_token_with_the_requested_scopes(
    github: GitHubStandIn, client: httpx.Client, app: OAuthApp
) -> None:
    answer = _exchange(client, app, _code(client, app, scope="read:user, read:org read:user"))
    assert answer["token_type"] == "bearer"
    assert answer["scope"] == "read:user,read:org"
    assert github.state.tokens[answer["access_token"]].scopes == ("read:user", "read:org")


def test_without_accept_json_the_answer_is_form_encoded(client: httpx.Client, app: OAuthApp) -> None:
    form = {"client_id": app.client_id, "client_secret": app.client_secret, "code": _code(client, app)}
    response = client.post("/login/oauth/access_token", data=form)
    assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(response.text)["token_type"] == ["bearer"]


def test_client_credentials_may_come_by_http_basic(client: httpx.Client, app: OAuthApp) -> None:
    response = client.post(
        "/login/oauth/access_token",
        data={"code": _code(client, app)},
        auth=(app.client_id, app.client_secret),
        headers={"Accept": "application/json"},
    )
    assert "access_token" in response.json()


def test_a_code_is_single_use(client: httpx.Client, app: OAuthApp) -> None:
    code = _code(client, app)
    assert "access_token" in _exchange(client, app, code)
    assert _exchange(client, app, code)["error"] == "bad_verification_code"


def test_a_wrong_secret_is_incorrect_client_credentials(client: httpx.Client, app: OAuthApp) -> None:
    answer = _exchange(client, app, _code(client, app), client_secret="wrong")
    assert answer["error"] == "incorrect_client_credentials"


def test_an_expired_code_is_refused(github: GitHubStandIn, client: httpx.Client, app: OAuthApp) -> None:
    github.state.code_lifetime_seconds = 0
    assert _exchange(client, app, _code(client, app))["error"] == "bad_verification_code"


def test_a_different_redirect_uri_at_exchange_is_refused(client: httpx.Client, app: OAuthApp) -> None:
    answer = _exchange(client, app, _code(client, app), redirect_uri=CALLBACK + "/other")
    assert answer["error"] == "redirect_uri_mismatch"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_pkce_is_verified_when_a_challenge_was_sent(client: httpx.Client, app: OAuthApp) -> None:
    verifier = "v" * 50
    pkce = {"code_challenge": _challenge(verifier), "code_challenge_method": "S256"}
    assert "access_token" in _exchange(client, app, _code(client, app, **pkce), code_verifier=verifier)
    wrong = _exchange(client, app, _code(client, app, **pkce), code_verifier="w" * 50)
    assert wrong["error"] == "bad_verification_code"
    assert _exchange(client, app, _code(client, app, **pkce))["error"] == "bad_verification_code"


def test_the_plain_pkce_method_is_refused(client: httpx.Client, app: OAuthApp) -> None:
    params = {"client_id": app.client_id, "code_challenge": "abc", "code_challenge_method": "plain"}
    assert client.get("/login/oauth/authorize", params=params).status_code == 400
