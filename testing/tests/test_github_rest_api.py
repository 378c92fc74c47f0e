"""The stand-in's REST API answers like GitHub's: auth, scopes, every route's shape, pagination links."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.github_state import Email, GitHubState

ALL_SCOPES = ("read:user", "user:email", "read:org", "repo")


@pytest.fixture
def state(github: GitHubStandIn) -> GitHubState:
    github.state.add_user(
        "alice",
        name="Alice",
        email="alice@example.com",
        emails=[Email("alice@example.com", primary=True, visibility="public"), Email("a@work.example")],
        orgs=["acme"],
        teams=["globex/core"],
        repos=["zeta", "Alpha", "mid"],
    )
    github.state.add_repo("alice", "secret", private=True)
    return github.state


@pytest.fixture
def api(github: GitHubStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=github.api_url, timeout=5) as client:
        yield client


def _get(api: httpx.Client, state: GitHubState, path: str, *scopes: str, **params: Any) -> httpx.Response:
    token = state.issue_token("alice", scopes or ALL_SCOPES)
    return api.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _links(response: httpx.Response) -> dict[str, str]:
    """rel -> URL from an RFC 8288 Link header."""
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("link", ""))}


def test_the_api_lives_under_api_v3(github: GitHubStandIn) -> None:
    assert github.api_url == github.base_url + "/api/v3"


def test_user_answers_the_profile(api: httpx.Client, state: GitHubState) -> None:
    response = _get(api, state, "/user")
    assert response.status_code == 200
    profile = response.json()
    assert profile["login"] == "alice"
    assert profile["id"] == state.users["alice"].id
    assert isinstance(profile["id"], int)
    assert (profile["name"], profile["email"]) == ("Alice", "alice@example.com")
    assert profile["avatar_url"].startswith("https://")


def test_a_hidden_email_is_null(api: httpx.Client, state: GitHubState) -> None:
    state.add_user("bob")
    token = state.issue_token("bob")
    assert api.get("/user", headers={"Authorization": f"token {token}"}).json()["email"] is None


@pytest.mark.parametrize("authorization", [None, "Bearer gho_unknown", "Basic YTpi", "Bearer"])
def test_without_a_known_token_the_answer_is_bad_credentials(
    api: httpx.Client, state: GitHubState, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = api.get("/user", headers=headers)
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_both_token_schemes_are_accepted(api: httpx.Client, state: GitHubState) -> None:
    token = state.issue_token("alice")
    for scheme in ("Bearer", "token", "bearer"):
        assert api.get("/user", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


def test_revoked_tokens_stop_working(api: httpx.Client, state: GitHubState) -> None:
    tokens = [state.issue_token("alice"), state.issue_token("alice")]
    assert state.revoke_tokens("alice") == 2
    assert state.revoke_tokens("alice") == 0
    for token in tokens:
        assert api.get("/user", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_granted_scopes_are_sent_in_x_oauth_scopes(api: httpx.Client, state: GitHubState) -> None:
    response = _get(api, state, "/user", "read:user", "user:email")
    assert response.headers["x-oauth-scopes"] == "read:user, user:email"


def test_emails_lists_every_address(api: httpx.Client, state: GitHubState) -> None:
    assert _get(api, state, "/user/emails").json() == [
        {"email": "alice@example.com", "primary": True, "verified": True, "visibility": "public"},
        {"email": "a@work.example", "primary": False, "verified": True, "visibility": None},
    ]


def test_emails_need_user_email_or_user(api: httpx.Client, state: GitHubState) -> None:
    assert _get(api, state, "/user/emails", "read:user").status_code == 404
    assert _get(api, state, "/user/emails", "user").status_code == 200


def test_orgs_include_those_of_teams(api: httpx.Client, state: GitHubState) -> None:
    orgs = _get(api, state, "/user/orgs").json()
    assert [org["login"] for org in orgs] == ["acme", "globex"]
    assert all(isinstance(org["id"], int) for org in orgs)


def test_teams_name_their_organization(api: httpx.Client, state: GitHubState) -> None:
    (team,) = _get(api, state, "/user/teams").json()
    assert (team["slug"], team["organization"]["login"]) == ("core", "globex")
    assert team["organization"]["id"] == state.orgs["globex"].id


@pytest.mark.parametrize("path", ["/user/orgs", "/user/teams"])
def test_orgs_and_teams_need_read_org(api: httpx.Client, state: GitHubState, path: str) -> None:
    refused = _get(api, state, path, "read:user")
    assert refused.status_code == 403
    assert refused.headers["x-accepted-oauth-scopes"] == "read:org"
    assert _get(api, state, path, "admin:org").status_code == 200


def test_an_org_is_the_same_for_every_member(state: GitHubState) -> None:
    bob = state.add_user("bob", orgs=["acme"])
    assert bob.orgs == [state.orgs["acme"]]
    assert state.users["alice"].orgs[0] is state.orgs["acme"]


def test_repos_have_githubs_fields(github: GitHubStandIn, api: httpx.Client, state: GitHubState) -> None:
    repo = next(r for r in _get(api, state, "/user/repos").json() if r["name"] == "secret")
    assert repo["full_name"] == "alice/secret"
    assert (repo["private"], repo["visibility"]) == (True, "private")
    assert repo["html_url"] == f"{github.base_url}/alice/secret"
    assert repo["owner"] == {"login": "alice"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", repo["pushed_at"])
    assert {"id", "description", "created_at", "updated_at"} <= repo.keys()


def test_private_repos_need_the_repo_scope(api: httpx.Client, state: GitHubState) -> None:
    names = [repo["name"] for repo in _get(api, state, "/user/repos", "read:user").json()]
    assert "secret" not in names
    assert len(names) == 3


@pytest.mark.parametrize(("visibility", "count"), [("all", 4), ("public", 3), ("private", 1)])
def test_repos_filter_by_visibility(
    api: httpx.Client, state: GitHubState, visibility: str, count: int
) -> None:
    assert len(_get(api, state, "/user/repos", visibility=visibility).json()) == count


def test_repos_sort_by_name_ascending_by_default(api: httpx.Client, state: GitHubState) -> None:
    names = [repo["name"] for repo in _get(api, state, "/user/repos").json()]
    assert names == ["Alpha", "mid", "secret", "zeta"]


@pytest.mark.parametrize("sort", ["created", "updated", "pushed"])
def test_repos_sort_by_dates_newest_first_by_default(
    api: httpx.Client, state: GitHubState, sort: str
) -> None:
    stamps = [repo[f"{sort}_at"] for repo in _get(api, state, "/user/repos", sort=sort).json()]
    assert stamps == sorted(stamps, reverse=True)
    ascending = _get(api, state, "/user/repos", sort=sort, direction="asc").json()
    assert [repo[f"{sort}_at"] for repo in ascending] == sorted(stamps)


@pytest.mark.parametrize("query", [{"visibility": "secret"}, {"sort": "stars"}, {"direction": "up"}])
def test_invalid_repo_queries_fail_validation(
    api: httpx.Client, state: GitHubState, query: dict[str, str]
) -> None:
    assert _get(api, state, "/user/repos", **query).status_code == 422


@pytest.fixture
def many_repos(state: GitHubState) -> GitHubState:
    for number in range(41):
        state.add_repo("alice", f"r{number:02}")
    return state  # 45 repositories in all


def test_the_first_page_links_to_next_and_last(
    github: GitHubStandIn, api: httpx.Client, many_repos: GitHubState
) -> None:
    response = _get(api, many_repos, "/user/repos")
    assert len(response.json()) == 30
    links = _links(response)
    assert links.keys() == {"next", "last"}
    assert links["next"] == f"{github.api_url}/user/repos?page=2"
    assert "page=2" in links["next"]
    assert "page=2" in links["last"]


def test_a_middle_page_links_every_way(api: httpx.Client, many_repos: GitHubState) -> None:
    response = _get(api, many_repos, "/user/repos", per_page=10, page=3, sort="created")
    assert len(response.json()) == 10
    links = _links(response)
    assert links.keys() == {"prev", "next", "last", "first"}
    for rel, page in [("prev", 2), ("next", 4), ("last", 5), ("first", 1)]:
        assert f"page={page}" in links[rel]
        assert "per_page=10" in links[rel]
        assert "sort=created" in links[rel]


def test_following_next_visits_every_repo_once(api: httpx.Client, many_repos: GitHubState) -> None:
    token = many_repos.issue_token("alice", ALL_SCOPES)
    seen: list[str] = []
    url: str | None = "/user/repos?per_page=7"
    while url:
        response = api.get(url, headers={"Authorization": f"Bearer {token}"})
        seen += [repo["full_name"] for repo in response.json()]
        url = _links(response).get("next")
    assert len(seen) == len(set(seen)) == 45


def test_per_page_is_capped_at_100(api: httpx.Client, many_repos: GitHubState) -> None:
    response = _get(api, many_repos, "/user/repos", per_page=500)
    assert len(response.json()) == 45
    assert "link" not in response.headers


def test_a_page_past_the_end_is_empty(api: httpx.Client, many_repos: GitHubState) -> None:
    response = _get(api, many_repos, "/user/repos", page=9)
    assert response.json() == []
    assert "page=2" in _links(response)["prev"]


def test_the_last_page_links_back_only(api: httpx.Client, many_repos: GitHubState) -> None:
    response = _get(api, many_repos, "/user/repos", page=2)
    assert len(response.json()) == 15
    links = _links(response)
    assert links.keys() == {"prev", "first"}
    assert "page=1" in links["prev"]
    assert "page=1" in links["first"]
