"""`mcp-standin github` runs an offline GitHub that a product can sign in against, seeded with demo data."""

from urllib.parse import parse_qs, urlsplit

import httpx

from mcp_testing.cli import seed_demo
from mcp_testing.github_state import GitHubState
from mcp_testing.processes import ServiceProcess, venv_script


def test_seed_demo_gives_the_first_user_the_org_and_everyone_repos() -> None:
    state = GitHubState()
    seed_demo(state, ["alice", "bob"])
    alice, bob = state.users["alice"], state.users["bob"]
    assert [org.login for org in alice.orgs] == ["acme"]
    assert [team.slug for team in alice.teams] == ["platform"]
    assert bob.orgs == []
    assert bob.email is None
    assert {repo.full_name for repo in alice.repos} >= {"alice/notes", "acme/widgets"}
    assert any(repo.private for repo in bob.repos)


def test_the_command_serves_a_github_to_sign_in_against(free_port: int) -> None:
    argv = [venv_script("mcp-standin"), "github", "--port", str(free_port), "--users", "carol"]
    argv += ["--client-id", "cid", "--client-secret", "csecret", "--callback-url", "http://127.0.0.1:1/cb"]
    with ServiceProcess([*argv, "--auto-login", "carol"], port=free_port) as service:
        params = {"client_id": "cid", "state": "s"}
        authorize = httpx.get(service.url + "/login/oauth/authorize", params=params)
        assert authorize.status_code == 302
        code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
        exchange = httpx.post(
            service.url + "/login/oauth/access_token",
            data={"client_id": "cid", "client_secret": "csecret", "code": code},
            headers={"Accept": "application/json"},
        )
        token = exchange.json()["access_token"]
        user = httpx.get(service.url + "/api/v3/user", headers={"Authorization": f"Bearer {token}"})
        assert user.json()["login"] == "carol"
    assert "GitHub stand-in: web" in service.log_text()
