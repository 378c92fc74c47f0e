"""The `get_github_repos` tool: the caller's GitHub repositories, fetched with their own GitHub token.

The user's GitHub token comes from the auth service by token exchange, authenticated as this server's
own confidential client; the MCP access token the client presented is never sent to GitHub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_auth_kit.rfc8693_upstream_tokens import UpstreamTokenClient, UpstreamTokenError
from mcp_tools_server.github_api import GitHubClient, GitHubError, Repository, RepositorySort, Visibility
from mcp_tools_server.tools.caller import require_access_token

REQUIRED_SCOPE = "github:repos"
MAX_LIMIT = 1000


class GitHubRepositories(BaseModel):
    """The repositories found, in the order asked for."""

    repositories: list[Repository]
    count: int = Field(description="how many repositories are listed (at most the requested limit)")


GetGitHubRepos = Callable[[Visibility, RepositorySort, int], Awaitable[GitHubRepositories]]


def make_get_github_repos(
    github: GitHubClient, upstream_tokens: UpstreamTokenClient | None
) -> GetGitHubRepos:
    """The tool bound to its collaborators; `upstream_tokens` is None when no client credentials are set."""

    async def get_github_repos(
        visibility: Annotated[Visibility, Field(description="which repositories to include")] = "all",
        sort: Annotated[
            RepositorySort, Field(description="dates sort newest first, full_name from A to Z")
        ] = "updated",
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="the most repositories to return")] = 30,
    ) -> GitHubRepositories:
        """List the signed-in user's GitHub repositories (their own, collaborations and organisations'),
        with visibility, description, language, stars and last update. Needs the scope github:repos."""
        token = require_access_token()
        if upstream_tokens is None:
            raise ToolError(
                "GitHub access is not configured here: MCP_CLIENT_ID and MCP_CLIENT_SECRET are unset"
            )
        github_token = await _github_token(upstream_tokens, token)
        try:
            repositories = await github.user_repositories(
                github_token, visibility=visibility, sort=sort, limit=limit
            )
        except GitHubError as error:
            raise ToolError(f"Cannot list your GitHub repositories: {error}") from None
        return GitHubRepositories(repositories=repositories, count=len(repositories))

    return get_github_repos


async def _github_token(upstream_tokens: UpstreamTokenClient, access_token: AccessToken) -> str:
    try:
        return await upstream_tokens.token_for("github", access_token)
    except UpstreamTokenError as error:
        raise ToolError(f"Cannot get your GitHub token from the auth service ({error})") from None
