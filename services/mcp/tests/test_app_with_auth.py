"""`mcp-tools serve` with authentication on: tokens from a stand-in auth service, GitHub from its stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.processes import ServiceProcess

from .auth_standin import AuthStandIn
from .conftest import mcp_client, serve_tools, sse_mcp_client
from .test_app import JSON_RPC_HEADERS, TOOLS

REPOS_SCOPES = "mcp:tools github:repos"


@pytest.fixture(scope="module")
def auth() -> Iterator[AuthStandIn]:
    with AuthStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def tools(auth: AuthStandIn, github_server: GitHubStandIn) -> Iterator[ServiceProcess]:
    service = serve_tools(
        {
            "MCP_AUTH_ISSUER": auth.issuer,
            "MCP_CLIENT_ID": auth.client_id,
            "MCP_CLIENT_SECRET": auth.client_secret,
            "MCP_GITHUB_API_URL": github_server.api_url,
        }
    )
    yield service
    service.stop()


def _resource(service: ServiceProcess) -> str:
    return service.url + "/mcp"


def _call(tool: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


async def test_without_a_token_the_client_is_told_where_to_authorize(
    tools: ServiceProcess, auth: AuthStandIn
) -> None:
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        refused = await http.post(_resource(tools), json=_call("calculate"))
        metadata = (await http.get(tools.url + "/.well-known/oauth-protected-resource/mcp")).json()
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert f'resource_metadata="{tools.url}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert metadata["resource"] == _resource(tools)
    assert metadata["authorization_servers"] == [auth.issuer]
    assert sorted(metadata["scopes_supported"]) == ["github:repos", "mcp:tools"]


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        ("Bearer a.b=.c", 400, "invalid_request"),  # issue 12: was 401 without an error
        ("Bearer", 400, "invalid_request"),
        ("Bearer abc def", 400, "invalid_request"),
        ("DPoP a.b=.c", 400, "invalid_request"),  # DPoP is allowed here: the same rule, its challenge
        ("Basic dXNlcjpwYXNz", 401, None),  # another scheme: no credentials, no error (RFC 6750 §3.1)
    ],
)
async def test_a_malformed_authorization_header_is_an_invalid_request(
    tools: ServiceProcess, authorization: str, status: int, error: str | None
) -> None:
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        refused = await http.post(
            _resource(tools), json=_call("calculate"), headers={"Authorization": authorization}
        )
    assert refused.status_code == status, refused.text
    challenge = refused.headers["www-authenticate"]
    assert f'resource_metadata="{tools.url}/.well-known/oauth-protected-resource/mcp"' in challenge
    if error is None:
        assert "error=" not in challenge
        assert "error" not in refused.json()
    else:
        assert f'error="{error}"' in challenge
        assert refused.json()["error"] == error


@pytest.mark.parametrize("audience", ["http://127.0.0.1:1/mcp", "other"])
async def test_a_token_for_another_resource_is_refused(
    tools: ServiceProcess, auth: AuthStandIn, audience: str
) -> None:
    token = auth.access_token(audience)
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        refused = await http.post(
            _resource(tools), json=_call("calculate"), headers={"Authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_user_info_comes_from_the_token(tools: ServiceProcess, auth: AuthStandIn, mode: str) -> None:
    token = auth.access_token(_resource(tools), scopes="mcp:tools", subject="user-7")
    async with mcp_client(_resource(tools), mode=mode, token=token) as client:
        assert sorted(tool.name for tool in (await client.list_tools()).tools) == TOOLS
        result = await client.call_tool("get_user_info", {})
        assert (await client.call_tool("calculate", {"expression": "7 ** 8"})).structured_content == {
            "result": "5764801"
        }
    assert not result.is_error
    assert result.structured_content == {
        "login": "octocat",
        "name": "The Octocat",
        "email": "octocat@example.com",
        "avatar_url": "https://avatars.example.com/u/1",
        "subject": "user-7",
        "client_id": "claude-desktop",
        "scopes": ["mcp:tools"],
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},  # handshake-era request: the tool is named in the body
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "get_github_repos"},
    ],
)
async def test_github_repos_without_its_scope_triggers_step_up(
    tools: ServiceProcess, auth: AuthStandIn, headers: dict[str, str]
) -> None:
    token = auth.access_token(_resource(tools), scopes="mcp:tools")
    async with httpx.AsyncClient(headers=JSON_RPC_HEADERS) as http:
        refused = await http.post(
            _resource(tools),
            json=_call("get_github_repos"),
            headers={"Authorization": f"Bearer {token}", **headers},
        )
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{REPOS_SCOPES}"' in challenge


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_github_repos_through_token_exchange(
    tools: ServiceProcess, auth: AuthStandIn, github: GitHubStandIn, mode: str
) -> None:
    github.state.add_user("octocat", repos=[f"repo-{n:03}" for n in range(120)])
    auth.github_tokens["user-1"] = github.state.issue_token("octocat")
    token = auth.access_token(_resource(tools), scopes=REPOS_SCOPES, subject="user-1")

    async with mcp_client(_resource(tools), mode=mode, token=token) as client:
        result = await client.call_tool("get_github_repos", {"sort": "full_name", "limit": 110})

    assert not result.is_error, result.content
    assert result.structured_content is not None
    names = [repo["full_name"] for repo in result.structured_content["repositories"]]
    assert names == [f"octocat/repo-{n:03}" for n in range(110)]
    exchange = auth.exchanges[-1]
    assert (exchange["subject_token"], exchange["audience"]) == (token, "github")
    # The stand-in GitHub accepts only the GitHub tokens it issued: the MCP token never went there.
    assert len([request for request in github.state.requests if request.path.endswith("/user/repos")]) == 2


async def test_a_user_without_a_github_token_gets_a_tool_error(
    tools: ServiceProcess, auth: AuthStandIn
) -> None:
    token = auth.access_token(_resource(tools), scopes=REPOS_SCOPES, subject="no-github")
    async with mcp_client(_resource(tools), token=token) as client:
        result = await client.call_tool("get_github_repos", {})
    assert result.is_error
    assert "Cannot get your GitHub token from the auth service (invalid_grant" in str(result.content)


async def test_github_failing_is_a_tool_error(
    tools: ServiceProcess, auth: AuthStandIn, github: GitHubStandIn
) -> None:
    github.state.add_user("octocat", repos=["a"])
    auth.github_tokens["user-1"] = github.state.issue_token("octocat")
    github.state.failures["api"] = "5xx"
    token = auth.access_token(_resource(tools), scopes=REPOS_SCOPES)
    async with mcp_client(_resource(tools), token=token) as client:
        result = await client.call_tool("get_github_repos", {})
    assert result.is_error
    assert "Cannot list your GitHub repositories: GitHub answered HTTP 502" in str(result.content)


async def test_sse_with_a_token(tools: ServiceProcess, auth: AuthStandIn) -> None:
    token = auth.access_token(_resource(tools))
    async with sse_mcp_client(tools.url + "/sse", token=token) as client:
        result = await client.call_tool("get_user_info", {})
    assert result.structured_content is not None
    assert result.structured_content["login"] == "octocat"


async def test_without_client_credentials_github_repos_explains_itself(auth: AuthStandIn) -> None:
    service = serve_tools({"MCP_AUTH_ISSUER": auth.issuer})
    try:
        token = auth.access_token(_resource(service), scopes=REPOS_SCOPES)
        async with mcp_client(_resource(service), token=token) as client:
            result = await client.call_tool("get_github_repos", {})
    finally:
        service.stop()
    assert result.is_error
    assert "MCP_CLIENT_ID and MCP_CLIENT_SECRET are unset" in str(result.content)
