"""`mcp-standin github` runs an offline GitHub that a product can sign in against, seeded with demo data."""

from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

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


def test_the_command_serves_a_workload_issuer_whose_token_verifies(free_port: int) -> None:
    argv = [venv_script("mcp-standin"), "workload-issuer", "--port", str(free_port)]
    argv += ["--audience", "http://127.0.0.1:9000", "--service-account", "agents/nightly"]
    with ServiceProcess(argv, port=free_port, ready_path="/.well-known/openid-configuration") as service:
        discovery = httpx.get(service.url + "/.well-known/openid-configuration").json()
        keys = httpx.get(discovery["jwks_uri"]).json()["keys"]
    token = service.log_text().split("service-account token of agents/nightly (1 hour): ")[1].split()[0]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]))
    claims = jwt.decode(token, key, algorithms=[key.algorithm_name], audience="http://127.0.0.1:9000")
    assert (claims["iss"], claims["sub"]) == (service.url, "system:serviceaccount:agents:nightly")


def test_the_command_serves_an_enterprise_idp_that_exchanges_its_id_tokens(free_port: int) -> None:
    argv = [venv_script("mcp-standin"), "enterprise-idp", "--port", str(free_port)]
    argv += ["--audience", "http://127.0.0.1:9000", "--resource", "http://127.0.0.1:9101/mcp"]
    argv += ["--scope", "mcp:tools", "--client-id-at-audience", "at-as", "--people", "dana@acme.example"]
    with ServiceProcess(argv, port=free_port, ready_path="/.well-known/openid-configuration") as service:
        log = service.log_text()
        secret = log.split("client mcp-client, secret ")[1].split()[0]
        id_token = log.split("ID token of dana@acme.example (1 hour): ")[1].split()[0]
        response = httpx.post(
            service.url + "/token",
            auth=("mcp-client", secret),
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
                "audience": "http://127.0.0.1:9000",
                "resource": "http://127.0.0.1:9101/mcp",
                "subject_token": id_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            },
        )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert (claims["client_id"], claims["email"]) == ("at-as", "dana@acme.example")
