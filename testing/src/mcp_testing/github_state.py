"""What the GitHub stand-in knows and does per test: OAuth apps, users, codes, tokens, failures, request log.

Tests arrange this state directly (add an app, add users, revoke tokens, switch a failure on) and read the
request log afterwards. The stand-in's handlers all run on the server's single event-loop thread, so the
check-then-update steps below (consuming a code) need no lock.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from starlette.requests import Request

from mcp_testing.standin_http import FailureMode, LoggedRequest, consume

__all__ = ["FailureMode", "GitHubState", "LoggedRequest", "OAuthApp", "RouteGroup", "state_of"]

RouteGroup = Literal["oauth", "api"]

# What `/user/emails`, `/user` and sign-in work with when a test does not say: GitHub's usual defaults.
DEFAULT_TOKEN_SCOPES = ("read:user", "user:email")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: str
    callback_url: str


@dataclass(frozen=True)
class Email:
    email: str
    primary: bool = False
    verified: bool = True
    visibility: Literal["public", "private"] | None = None


@dataclass(frozen=True)
class Org:
    login: str
    id: int


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    org: str


@dataclass(frozen=True)
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    description: str | None
    created_at: datetime
    updated_at: datetime
    pushed_at: datetime

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def visibility(self) -> Literal["public", "private"]:
        return "private" if self.private else "public"


@dataclass
class User:
    id: int
    login: str
    name: str | None
    email: str | None  # the public profile email; GitHub answers null when the user hides it
    avatar_url: str
    emails: list[Email]
    orgs: list[Org]
    teams: list[Team]
    repos: list[Repo]


@dataclass
class IssuedToken:
    value: str
    login: str
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class AuthorizationCode:
    value: str
    client_id: str
    redirect_uri: str
    login: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    expires_at: float  # time.monotonic()
    used: bool = False


_PROCESS_IDS = itertools.count(1001)


@dataclass
class GitHubState:
    apps: dict[str, OAuthApp] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    orgs: dict[str, Org] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    # Sign in as this login without showing the form, like GitHub does for an app the user already approved.
    auto_login: str | None = None
    failures: dict[RouteGroup, FailureMode] = field(default_factory=dict)
    # How long a "timeout" failure holds the request: longer than any client in the product waits.
    timeout_seconds: float = 30.0
    code_lifetime_seconds: float = 600.0  # GitHub's codes expire after ten minutes
    requests: list[LoggedRequest] = field(default_factory=list)
    # Shared by every state of the process, as GitHub never hands out an id twice: tests that share a
    # database must not find one test's user under another test's GitHub id.
    _ids: Iterator[int] = field(default_factory=lambda: _PROCESS_IDS, init=False, repr=False, compare=False)

    def _next_id(self) -> int:
        return next(self._ids)

    def add_app(
        self, callback_url: str, *, client_id: str | None = None, client_secret: str | None = None
    ) -> OAuthApp:
        app = OAuthApp(
            client_id=client_id or "Iv1." + secrets.token_hex(8),
            client_secret=client_secret or secrets.token_hex(20),
            callback_url=callback_url,
        )
        self.apps[app.client_id] = app
        return app

    def add_user(
        self,
        login: str,
        *,
        name: str | None = None,
        email: str | None = None,
        emails: Sequence[Email] | None = None,
        orgs: Sequence[str] = (),
        teams: Sequence[str] = (),
        repos: Sequence[str] = (),
    ) -> User:
        """Adds a user; `teams` are "org/slug" (membership implies the org), `repos` public repo names."""
        user_id = self._next_id()
        team_list = [Team(slug=slug, name=slug, org=org) for org, slug in (t.split("/", 1) for t in teams)]
        org_logins = dict.fromkeys([*orgs, *(team.org for team in team_list)])
        if emails is None:
            visibility: Literal["public", "private"] = "public" if email else "private"
            emails = [Email(email or f"{login}@users.example.com", primary=True, visibility=visibility)]
        user = User(
            id=user_id,
            login=login,
            name=name,
            email=email,
            avatar_url=f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
            emails=list(emails),
            orgs=[self._org(org) for org in org_logins],
            teams=team_list,
            repos=[],
        )
        self.users[login] = user
        for repo_name in repos:
            self.add_repo(login, repo_name)
        return user

    def _org(self, login: str) -> Org:
        return self.orgs.setdefault(login, Org(login=login, id=self._next_id()))

    def add_repo(
        self,
        login: str,
        name: str,
        *,
        private: bool = False,
        owner: str | None = None,
        description: str | None = None,
    ) -> Repo:
        """Adds a repository the user can see; the times differ per repo so every sort order is distinct."""
        repo_id = self._next_id()
        created = _EPOCH + timedelta(hours=repo_id)
        updated = created + timedelta(hours=(repo_id * 7919) % 1000)
        repo = Repo(
            id=repo_id,
            owner=owner or login,
            name=name,
            private=private,
            description=description,
            created_at=created,
            updated_at=updated,
            pushed_at=updated + timedelta(minutes=(repo_id * 104729) % 5000),
        )
        self.users[login].repos.append(repo)
        return repo

    def issue_code(
        self,
        app: OAuthApp,
        login: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        code_challenge: str | None,
    ) -> str:
        code = AuthorizationCode(
            value=secrets.token_hex(10),
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            login=login,
            scopes=scopes,
            code_challenge=code_challenge,
            expires_at=time.monotonic() + self.code_lifetime_seconds,
        )
        self.codes[code.value] = code
        return code.value

    def consume_code(self, value: str, client_id: str) -> AuthorizationCode | None:
        return consume(self.codes, value, client_id)

    def issue_token(
        self, login: str, scopes: Sequence[str] = DEFAULT_TOKEN_SCOPES, client_id: str = ""
    ) -> str:
        """A token as GitHub would issue it; tests call this to skip the web flow."""
        value = "gho_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
        self.tokens[value] = IssuedToken(value=value, login=login, client_id=client_id, scopes=tuple(scopes))
        return value

    def live_token(self, value: str) -> IssuedToken | None:
        token = self.tokens.get(value)
        return token if token is not None and not token.revoked else None

    def revoke_tokens(self, login: str) -> int:
        """Revokes every token of a user, as when they revoke the app on GitHub; returns how many."""
        live = [token for token in self.tokens.values() if token.login == login and not token.revoked]
        for token in live:
            token.revoked = True
        return len(live)

    def fail(self, group: RouteGroup, mode: FailureMode) -> None:
        self.failures[group] = mode

    def recover(self) -> None:
        self.failures.clear()

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [logged for logged in self.requests if logged.path == path]


def state_of(request: Request) -> GitHubState:
    """The state the stand-in app currently serves (swapped whole when a test resets it)."""
    state = request.app.state.github
    assert isinstance(state, GitHubState)
    return state
