"""`mcp-standin`: runs a stand-in as a standalone server, e.g. an offline GitHub for docker compose or demos.

    mcp-standin github --port 9900 --client-id demo --client-secret demo-secret \\
        --callback-url http://127.0.0.1:9000/callback --users alice,bob

Point the product at it with GITHUB_URL=http://127.0.0.1:9900 and GITHUB_API_URL=http://127.0.0.1:9900/api/v3.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    state = GitHubState(auto_login=args.auto_login)
    state.add_app(args.callback_url, client_id=args.client_id, client_secret=args.client_secret)
    seed_demo(state, [login for login in args.users.split(",") if login])
    print(
        f"GitHub stand-in: web http://{args.host}:{args.port}, API http://{args.host}:{args.port}{API_PREFIX}"
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="info")
