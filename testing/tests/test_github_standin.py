"""The stand-in as a server: failure switches per route group, the request log, reset, start and stop."""

import json
from collections.abc import Iterator

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import GitHubState


@pytest.fixture
def client(github: GitHubStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=github.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def token(github: GitHubStandIn) -> str:
    github.state.add_user("alice")
    return github.state.issue_token("alice")


def _user(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/api/v3/user", headers={"Authorization": f"Bearer {token}"})


def _token_request(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/login/oauth/access_token", data={"code": "x"}, headers={"Accept": "application/json"}
    )


def test_5xx_on_the_api_leaves_the_web_flow_alone(
    github: GitHubStandIn, client: httpx.Client, token: str
) -> None:
    github.state.fail("api", "5xx")
    assert _user(client, token).status_code == 502
    assert _token_request(client).json()["error"] == "incorrect_client_credentials"
    github.state.recover()
    assert _user(client, token).status_code == 200


def test_5xx_on_oauth_leaves_the_api_alone(github: GitHubStandIn, client: httpx.Client, token: str) -> None:
    github.state.fail("oauth", "5xx")
    assert _token_request(client).status_code == 502
    assert client.get("/login/oauth/authorize").status_code == 502
    assert _user(client, token).status_code == 200


@pytest.mark.parametrize("group", ["api", "oauth"])
def test_junk_is_a_200_with_malformed_json(
    github: GitHubStandIn, client: httpx.Client, token: str, group: str
) -> None:
    github.state.fail("api" if group == "api" else "oauth", "junk")
    response = _user(client, token) if group == "api" else _token_request(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_timeout_outlasts_a_client_that_waits_briefly(github: GitHubStandIn, token: str) -> None:
    github.state.fail("api", "timeout")
    github.state.timeout_seconds = 2.0
    with httpx.Client(base_url=github.base_url, timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        _user(impatient, token)


def test_the_log_records_calls_without_secrets(
    github: GitHubStandIn, client: httpx.Client, token: str
) -> None:
    client.get("/api/v3/user/repos", params={"per_page": "5"}, headers={"Authorization": f"token {token}"})
    _token_request(client)
    repos, exchange = github.state.requests
    assert (repos.method, repos.path, repos.query) == ("GET", "/api/v3/user/repos", {"per_page": "5"})
    assert repos.headers["authorization"] == "token <redacted>"
    assert token not in json.dumps(repos.headers)
    assert (exchange.method, exchange.path) == ("POST", "/login/oauth/access_token")
    assert github.state.requests_to("/api/v3/user/repos") == [repos]


def test_failed_calls_are_logged_and_health_checks_are_not(
    github: GitHubStandIn, client: httpx.Client, token: str
) -> None:
    github.state.fail("api", "5xx")
    _user(client, token)
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/healthz").status_code == 200
    assert [logged.path for logged in github.state.requests] == ["/api/v3/user"]


def test_each_test_starts_with_an_empty_state(github: GitHubStandIn) -> None:
    assert github.state == GitHubState()


def test_reset_serves_a_new_state(github: GitHubStandIn, client: httpx.Client, token: str) -> None:
    old = github.state
    fresh = github.reset()
    assert fresh is github.state
    assert fresh is not old
    assert _user(client, token).status_code == 401
    assert old.requests == []


def test_a_stopped_stand_in_refuses_connections() -> None:
    with GitHubStandIn() as standin:
        url = standin.base_url + "/healthz"
        assert httpx.get(url).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_stop_does_not_wait_for_a_parked_request(token: str) -> None:
    with GitHubStandIn() as standin:
        standin.state.fail("oauth", "timeout")
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(standin.base_url + "/login/oauth/authorize", timeout=0.2)
    # Reaching here within pytest's timeout is the assertion: stop() did not sit out timeout_seconds.
