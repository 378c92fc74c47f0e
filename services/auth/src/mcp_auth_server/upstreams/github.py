"""GitHub (and GitHub Enterprise Server) as the upstream: OAuth web flow and allow-lists.

Users are keyed by GitHub's numeric id, never the login, which can be renamed and re-used.
Allow-lists admit a user who is named in AUTH_ALLOWED_USERS, or belongs to one of
AUTH_ALLOWED_ORGS, or to one of AUTH_ALLOWED_TEAMS (`org/team`); empty lists admit anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from mcp_auth_server.oauth.rfc7636_pkce import s256_challenge
from mcp_auth_server.upstreams.base import (
    AccessDenied,
    Identity,
    UpstreamRejected,
    UpstreamRequest,
    UpstreamTokens,
    UpstreamUnavailable,
)
from mcp_auth_server.upstreams.http import (
    check_authorization_response,
    request_json,
    request_json_pages,
    tokens_from,
)

# /user/orgs and /user/teams by 100: 20 pages is 2,000 memberships, far beyond any real account.
MAX_PAGES = 20


class GitHubConnector:
    name = "github"
    display_name = "GitHub"

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        web_url: str,
        api_url: str,
        scopes: str,
        allowed_users: list[str],
        allowed_orgs: list[str],
        allowed_teams: list[str],
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._web_url = web_url
        self._api_url = api_url
        self._scopes = scopes
        self._allowed_users = {user.lower() for user in allowed_users}
        self._allowed_orgs = {org.lower() for org in allowed_orgs}
        self._allowed_teams = {team.lower() for team in allowed_teams}

    async def login_url(self, request: UpstreamRequest) -> str:
        query = {
            "client_id": self._client_id,
            "redirect_uri": request.callback_url,
            "scope": self._scopes,
            "state": request.state,
            "code_challenge": s256_challenge(request.code_verifier),
            "code_challenge_method": "S256",
            "allow_signup": "false",
        }
        return f"{self._web_url}/login/oauth/authorize?{urlencode(query)}"

    async def handle_callback(self, params: Mapping[str, str], request: UpstreamRequest) -> Identity:
        code = check_authorization_response(params, "GitHub")
        tokens = await self._exchange_code(code, request)
        user = await self._api_get("/user", tokens.access_token)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise UpstreamUnavailable("GitHub returned a malformed user")
        identity = Identity(
            provider=self.name,
            subject=str(user["id"]),
            login=user.get("login"),
            name=user.get("name") or user.get("login"),
            email=await self._primary_verified_email(tokens.access_token),
            avatar_url=user.get("avatar_url"),
            tokens=tokens,
        )
        await self.check_access(identity)
        return identity

    async def check_access(self, identity: Identity) -> None:
        if identity.tokens is None:
            raise UpstreamRejected("no GitHub token is stored for this user")
        token = identity.tokens.access_token
        # Asking /user also proves the stored token still works (a revoked one gets 401).
        user = await self._api_get("/user", token)
        login = str(user.get("login", "")).lower() if isinstance(user, dict) else ""
        if not (self._allowed_users or self._allowed_orgs or self._allowed_teams):
            return
        if login in self._allowed_users:
            return
        if self._allowed_orgs:
            orgs = await self._api_list("/user/orgs", token)
            if any(str(org.get("login", "")).lower() in self._allowed_orgs for org in _objects(orgs)):
                return
        if self._allowed_teams:
            teams = await self._api_list("/user/teams", token)
            for team in _objects(teams):
                org = team.get("organization") or {}
                if f"{org.get('login', '')}/{team.get('slug', '')}".lower() in self._allowed_teams:
                    return
        raise AccessDenied(f"GitHub user {login or identity.subject} is not on this service's allow-lists")

    async def refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        """OAuth-app tokens do not expire: there is nothing to refresh."""
        return tokens

    async def _exchange_code(self, code: str, request: UpstreamRequest) -> UpstreamTokens:
        body = await self._call(
            "POST",
            f"{self._web_url}/login/oauth/access_token",
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "code": code,
                "redirect_uri": request.callback_url,
                "code_verifier": request.code_verifier,
            },
        )
        return tokens_from(body, "GitHub")

    async def _primary_verified_email(self, token: str) -> str | None:
        emails = await self._api_get("/user/emails", token)
        for entry in _objects(emails):
            if entry.get("primary") and entry.get("verified"):
                return str(entry.get("email"))
        return None

    async def _api_get(self, path: str, token: str) -> Any:
        return await self._call("GET", f"{self._api_url}{path}", headers=_api_headers(token))

    async def _api_list(self, path: str, token: str) -> list[Any]:
        """Every page of a list (GitHub pages by 30 unless asked; a member of many orgs has several)."""
        return await request_json_pages(
            self._http,
            "GitHub",
            f"{self._api_url}{path}?per_page=100",
            max_pages=MAX_PAGES,
            headers=_api_headers(token),
        )

    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        return await request_json(self._http, "GitHub", method, url, **kwargs)


def _api_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"}


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
