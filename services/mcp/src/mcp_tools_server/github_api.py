"""A small GitHub REST client for the tools: RFC 8288 pagination, and every failure as a plain message."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

Visibility = Literal["all", "public", "private"]
RepositorySort = Literal["created", "updated", "pushed", "full_name"]

# GitHub's largest page; fewer requests for the same repositories.
_MAX_PAGE_SIZE = 100


class GitHubError(Exception):
    """GitHub could not be reached or refused the request; the message is meant for the tool's caller."""


class Repository(BaseModel):
    """The parts of GitHub's repository object a caller usually wants."""

    model_config = ConfigDict(extra="ignore")

    full_name: str
    description: str | None = None
    # Older GitHub Enterprise servers send only `private`.
    visibility: str | None = None
    private: bool
    html_url: str
    language: str | None = None
    fork: bool = False
    archived: bool = False
    stargazers_count: int = 0
    default_branch: str | None = None
    updated_at: str | None = None
    pushed_at: str | None = None


class GitHubClient:
    """Calls the GitHub API at `api_url` on a user's behalf, with the user's own GitHub token."""

    def __init__(self, api_url: str, http: httpx.AsyncClient) -> None:
        """`http`'s timeouts bound every request."""
        self._api_url = api_url.rstrip("/")
        self._origin = _origin(self._api_url)
        self._http = http

    async def user_repositories(
        self, github_token: str, *, visibility: Visibility, sort: RepositorySort, limit: int
    ) -> list[Repository]:
        """`GET /user/repos`, following `rel="next"` links until `limit` repositories are collected."""
        repositories: list[Repository] = []
        url: str | None = f"{self._api_url}/user/repos"
        params: dict[str, str | int] | None = {
            "visibility": visibility,
            "sort": sort,
            "per_page": min(limit, _MAX_PAGE_SIZE),
        }
        while url is not None and len(repositories) < limit:
            response = await self._get(url, github_token, params)
            repositories.extend(_repositories(response))
            url = self._next_page(response)
            params = None  # the next link already carries the query
        return repositories[:limit]

    async def _get(self, url: str, github_token: str, params: dict[str, str | int] | None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {github_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        try:
            response = await self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException:
            raise GitHubError("GitHub did not answer in time; try again later") from None
        except httpx.HTTPError as error:
            raise GitHubError(f"GitHub could not be reached ({type(error).__name__})") from None
        if response.is_success:
            return response
        raise GitHubError(_failure(response))

    def _next_page(self, response: httpx.Response) -> str | None:
        """The RFC 8288 `rel="next"` target, which must stay on the API's origin."""
        url = response.links.get("next", {}).get("url")
        if url is None:
            return None
        # The user's GitHub token goes with every page request; never send it to another host.
        if _origin(url) != self._origin:
            raise GitHubError("GitHub's next-page link points to another host; stopped following it")
        return url


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _repositories(response: httpx.Response) -> list[Repository]:
    try:
        items = response.json()
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [Repository.model_validate(item) for item in items]
    except ValueError:  # also pydantic's ValidationError
        raise GitHubError("GitHub answered with something other than a list of repositories") from None


def _failure(response: httpx.Response) -> str:
    status = response.status_code
    if status == 401:
        return "GitHub rejected the user's GitHub token (HTTP 401); signing in again renews it"
    if status in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset", "an unknown time")
        return f"GitHub's rate limit is exhausted (HTTP {status}); it resets at epoch {reset}"
    return f"GitHub answered HTTP {status}{_github_message(response)}"


def _github_message(response: httpx.Response) -> str:
    """GitHub's own `message`, shortened: it explains most refusals better than the status does."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {message[:200]}" if isinstance(message, str) and message else ""
