"""`mcp-standin`: runs a stand-in as a standalone server, e.g. an offline GitHub for docker compose or demos.

    mcp-standin github --port 9900 --client-id demo --client-secret demo-secret \\
        --callback-url http://127.0.0.1:9000/callback --users alice,bob

Point the product at it with GITHUB_URL=http://127.0.0.1:9900 and GITHUB_API_URL=http://127.0.0.1:9900/api/v3.

    mcp-standin enterprise-idp --port 9800 --audience http://127.0.0.1:9000 \\
        --resource http://127.0.0.1:9101/mcp --scope mcp:tools --client-id-at-audience <client id> \\
        --people alice@acme.example
    mcp-standin workload-issuer --port 9810 --audience http://127.0.0.1:9000 --service-account agents/bot

An enterprise IdP issuing ID-JAGs by token exchange (it prints its client's credentials and an ID token
per person), and a Kubernetes-style workload issuer (it prints a service-account token); trust either
with AUTH_TRUSTED_ISSUERS or `mcp-auth issuers add`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from mcp_testing import enterprise_idp, workload_issuer
from mcp_testing.github_standin import API_PREFIX, create_app
from mcp_testing.github_state import GitHubState

DEMO_ORG = "acme"


def seed_demo(state: GitHubState, logins: Sequence[str]) -> None:
    """Demo users: the first belongs to the demo org and its team; each has public and private repos."""
    for index, login in enumerate(logins):
        in_org = index == 0
        state.add_user(
            login,
            name=login.title(),
            email=f"{login}@example.com" if in_org else None,
            teams=[f"{DEMO_ORG}/platform"] if in_org else [],
            repos=["hello-world", "dotfiles"],
        )
        state.add_repo(login, "notes", private=True, description=f"{login.title()}'s private notes")
        if in_org:
            state.add_repo(login, "widgets", owner=DEMO_ORG, description="The demo org's shared repo")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-standin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    github = commands.add_parser("github", help="an offline GitHub: OAuth web flow and REST API")
    github.add_argument("--host", default="127.0.0.1")
    github.add_argument("--port", type=int, default=9900)
    github.add_argument("--client-id", default="demo-client-id")
    github.add_argument("--client-secret", default="demo-client-secret")
    github.add_argument("--callback-url", default="http://127.0.0.1:9000/callback")
    github.add_argument("--users", default="alice,bob", help="comma-separated logins of demo users")
    github.add_argument("--auto-login", metavar="LOGIN", help="sign in as LOGIN without showing the form")
    idp = commands.add_parser("enterprise-idp", help="an enterprise IdP issuing ID-JAGs (token exchange)")
    workload = commands.add_parser("workload-issuer", help="a Kubernetes-style service-account token issuer")
    for command, port in ((idp, 9800), (workload, 9810)):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=port)
        command.add_argument("--audience", required=True, help="the auth service's issuer")
    idp.add_argument("--resource", action="append", required=True, help="an MCP server the policy allows")
    idp.add_argument("--scope", action="append", required=True, help="a scope the policy allows")
    idp.add_argument("--client-id-at-audience", required=True, help="the client's id at the auth service")
    idp.add_argument("--people", default="alice@acme.example", help="comma-separated emails")
    workload.add_argument("--service-account", default="agents/bot", metavar="NAMESPACE/NAME")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "enterprise-idp":
        _serve_enterprise_idp(args)
        return
    if args.command == "workload-issuer":
        _serve_workload_issuer(args)
        return
    state = GitHubState(auto_login=args.auto_login)
    state.add_app(args.callback_url, client_id=args.client_id, client_secret=args.client_secret)
    seed_demo(state, [login for login in args.users.split(",") if login])
    print(
        f"GitHub stand-in: web http://{args.host}:{args.port}, API http://{args.host}:{args.port}{API_PREFIX}"
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="info")


def _serve_enterprise_idp(args: argparse.Namespace) -> None:
    base_url = f"http://{args.host}:{args.port}"
    state = enterprise_idp.EnterpriseIdpState(base_url=base_url)
    secret = state.add_client("mcp-client")
    state.allow(
        "mcp-client",
        audience=args.audience,
        resources=args.resource,
        scopes=args.scope,
        client_id_at_audience=args.client_id_at_audience,
    )
    print(f"enterprise IdP stand-in: issuer {base_url}; client mcp-client, secret {secret}")
    for email in (email for email in args.people.split(",") if email):
        person = state.add_person(email.split("@")[0], email)
        print(f"ID token of {email} (1 hour): {state.id_token(person, 'mcp-client', lifetime=3600)}")
    uvicorn.run(enterprise_idp.create_app(state), host=args.host, port=args.port, log_level="info")


def _serve_workload_issuer(args: argparse.Namespace) -> None:
    base_url = f"http://{args.host}:{args.port}"
    state = workload_issuer.WorkloadIssuerState(base_url=base_url)
    namespace, _, name = args.service_account.partition("/")
    token = state.service_account_token(namespace, name or "bot", audience=args.audience, lifetime=3600)
    print(f"workload issuer stand-in: issuer {base_url}, keys {base_url}{workload_issuer.JWKS_PATH}")
    print(f"service-account token of {args.service_account} (1 hour): {token}")
    uvicorn.run(workload_issuer.create_app(state), host=args.host, port=args.port, log_level="info")
