"""The GitHub client against the GitHub stand-in: pagination, parameters, and failures as messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn
from mcp_tools_server.github_api import GitHubClient, GitHubError


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5) as client:
        yield client


def _client(github: GitHubStandIn, http: httpx.AsyncClient) -> GitHubClient:
    return GitHubClient(github.api_url, http)


async def test_follows_next_links_until_the_limit(github: GitHubStandIn, http: httpx.AsyncClient) -> None:
    github.state.add_user("octocat", repos=[f"repo-{n:03}" for n in range(250)])
    token = github.state.issue_token("octocat")

    repositories = await _client(github, http).user_repositories(
        token, visibility="all", sort="full_name", limit=230
    )

    assert [repo.full_name for repo in repositories] == [f"octocat/repo-{n:03}" for n in range(230)]
    pages = [request for request in github.state.requests if request.path.endswith("/user/repos")]
    assert len(pages) == 3
    assert pages[0].query == {"visibility": "all", "sort": "full_name", "per_page": "100"}
    assert pages[2].query["page"] == "3"
    # The stand-in answers only its own tokens, so success proves which token went; the log hides it.
    assert all(request.headers["authorization"].startswith("Bearer ") for request in pages)


async def test_stops_at_the_last_page(github: GitHubStandIn, http: httpx.AsyncClient) -> None:
    github.state.add_user("octocat", repos=["a", "b", "c"])
    token = github.state.issue_token("octocat")

    repositories = await _client(github, http).user_repositories(
        token, visibility="all", sort="updated", limit=100
    )

    assert sorted(repo.full_name for repo in repositories) == ["octocat/a", "octocat/b", "octocat/c"]
    assert len(github.state.requests) == 1


async def test_visibility_reaches_github(github: GitHubStandIn, http: httpx.AsyncClient) -> None:
    github.state.add_user("octocat", repos=["public-one"])
    github.state.add_repo("octocat", "secret", private=True, description="hidden")
    token = github.state.issue_token("octocat", scopes=["repo"])

    repositories = await _client(github, http).user_repositories(
        token, visibility="private", sort="created", limit=10
    )

    assert [(repo.full_name, repo.visibility, repo.private, repo.description) for repo in repositories] == [
        ("octocat/secret", "private", True, "hidden")
    ]


async def test_a_rejected_token_is_a_clear_error(github: GitHubStandIn, http: httpx.AsyncClient) -> None:
    with pytest.raises(GitHubError, match=r"rejected the user's GitHub token \(HTTP 401\)"):
        await _client(github, http).user_repositories(
            "gho_unknown", visibility="all", sort="updated", limit=5
        )


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("5xx", "GitHub answered HTTP 502"),
        ("junk", "something other than a list of repositories"),
        ("timeout", "did not answer in time"),
    ],
)
async def test_github_failing_is_a_clear_error(
    github: GitHubStandIn, http: httpx.AsyncClient, failure: str, message: str
) -> None:
    github.state.add_user("octocat", repos=["a"])
    token = github.state.issue_token("octocat")
    github.state.failures["api"] = failure  # type: ignore[assignment]
    github.state.timeout_seconds = 2

    with pytest.raises(GitHubError, match=message):
        await _client(github, http).user_repositories(token, visibility="all", sort="updated", limit=5)


async def test_unreachable_github_is_a_clear_error(http: httpx.AsyncClient) -> None:
    client = GitHubClient("http://127.0.0.1:9", http)
    with pytest.raises(GitHubError, match=r"could not be reached \(ConnectError\)"):
        await client.user_repositories("gho_x", visibility="all", sort="updated", limit=5)


async def test_never_follows_a_next_link_to_another_host() -> None:
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(
            200, json=[], headers={"Link": '<https://evil.example/user/repos?page=2>; rel="next"'}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = GitHubClient("https://api.github.com", http)
        with pytest.raises(GitHubError, match="points to another host"):
            await client.user_repositories("gho_x", visibility="all", sort="updated", limit=5)
    assert requested == ["https://api.github.com/user/repos?visibility=all&sort=updated&per_page=5"]


async def test_rate_limit_is_explained() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"}
        return httpx.Response(403, json={"message": "API rate limit exceeded"}, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = GitHubClient("https://api.github.com/", http)
        with pytest.raises(GitHubError, match=r"rate limit is exhausted .* resets at epoch 1700000000"):
            await client.user_repositories("gho_x", visibility="all", sort="updated", limit=5)
