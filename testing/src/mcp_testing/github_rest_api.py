"""The part of GitHub's REST API the product reads, with GitHub's auth, scope and pagination behaviour.

Mounted under /api/v3 as on GitHub Enterprise Server. Every list is paginated with an RFC 8288 `Link`
header (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_testing.github_state import IssuedToken, Repo, User, state_of

_Json = dict[str, Any]
_Handler = Callable[[Request, User, IssuedToken], Awaitable[Response]]
_Endpoint = Callable[[Request], Awaitable[Response]]

# Scopes that include a narrower one (https://docs.github.com/apps/oauth-apps/.../scopes-for-oauth-apps).
_IMPLIED_BY = {"read:org": {"write:org", "admin:org"}, "user:email": {"user"}, "read:user": {"user"}}
# GitHub hides the emails route from tokens without user:email instead of refusing it.
_MISSING_SCOPE_STATUS = {"user:email": 404}
_VISIBILITIES = {"all", "public", "private"}
_REPO_SORTS = {
    "full_name": lambda repo: repo.full_name.lower(),
    "created": lambda repo: repo.created_at,
    "updated": lambda repo: repo.updated_at,
    "pushed": lambda repo: repo.pushed_at,
}


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    return JSONResponse(body, status_code=status, headers=headers)


def _has_scope(token: IssuedToken, scope: str) -> bool:
    return scope in token.scopes or bool(_IMPLIED_BY.get(scope, set()) & set(token.scopes))


def _bearer(request: Request) -> str:
    """The token from `Authorization: Bearer <t>` or GitHub's older `Authorization: token <t>`."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() in {"bearer", "token"} else ""


def _authenticated(required_scope: str | None = None) -> Callable[[_Handler], _Endpoint]:
    """Answers 401 without a live token and GitHub's missing-scope answer; adds `X-OAuth-Scopes`."""

    def wrap(handler: _Handler) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            state = state_of(request)
            token = state.live_token(_bearer(request))
            user = state.users.get(token.login) if token is not None else None
            if token is None or user is None:
                return _message(401, "Bad credentials")
            granted = {"X-OAuth-Scopes": ", ".join(token.scopes)}
            if required_scope is not None and not _has_scope(token, required_scope):
                status = _MISSING_SCOPE_STATUS.get(required_scope, 403)
                text = "Not Found" if status == 404 else f"You need the '{required_scope}' scope."
                return _message(status, text, {**granted, "X-Accepted-OAuth-Scopes": required_scope})
            response = await handler(request, user, token)
            response.headers.update(granted)
            return response

        return endpoint

    return wrap


def _web_base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _paginated(request: Request, items: list[_Json]) -> Response:
    """One page of `items` (per_page default 30, at most 100) with GitHub's prev/next/last/first links."""
    try:
        per_page = min(max(int(request.query_params.get("per_page", "30")), 1), 100)
        page = max(int(request.query_params.get("page", "1")), 1)
    except ValueError:
        return _message(422, "Validation Failed")
    last = max(1, -(-len(items) // per_page))
    relations = []
    if page > 1:
        relations.append(("prev", min(page - 1, last)))
    if page < last:
        relations += [("next", page + 1), ("last", last)]
    if page > 1:
        relations.append(("first", 1))
    links = ", ".join(f'<{request.url.include_query_params(page=n)}>; rel="{rel}"' for rel, n in relations)
    response = JSONResponse(items[(page - 1) * per_page : page * per_page])
    if links:
        response.headers["Link"] = links
    return response


@_authenticated()
async def get_user(request: Request, user: User, token: IssuedToken) -> Response:
    return JSONResponse(
        {
            "login": user.login,
            "id": user.id,
            "type": "User",
            "name": user.name,
            "email": user.email,
            "avatar_url": user.avatar_url,
            "html_url": f"{_web_base(request)}/{user.login}",
        }
    )


@_authenticated("user:email")
async def list_emails(request: Request, user: User, token: IssuedToken) -> Response:
    emails = [
        {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}
        for e in user.emails
    ]
    return _paginated(request, emails)


@_authenticated("read:org")
async def list_orgs(request: Request, user: User, token: IssuedToken) -> Response:
    return _paginated(request, [{"login": org.login, "id": org.id, "description": None} for org in user.orgs])


@_authenticated("read:org")
async def list_teams(request: Request, user: User, token: IssuedToken) -> Response:
    orgs = state_of(request).orgs
    teams = [
        {"slug": team.slug, "name": team.name, "organization": {"login": team.org, "id": orgs[team.org].id}}
        for team in user.teams
    ]
    return _paginated(request, teams)


def _repo_json(request: Request, repo: Repo) -> _Json:
    return {
        "id": repo.id,
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "visibility": repo.visibility,
        "html_url": f"{_web_base(request)}/{repo.full_name}",
        "description": repo.description,
        "fork": False,
        "owner": {"login": repo.owner},
        "created_at": _timestamp(repo.created_at),
        "updated_at": _timestamp(repo.updated_at),
        "pushed_at": _timestamp(repo.pushed_at),
    }


@_authenticated()
async def list_repos(request: Request, user: User, token: IssuedToken) -> Response:
    query = request.query_params
    visibility = query.get("visibility", "all")
    sort = query.get("sort", "full_name")
    # GitHub sorts by name ascending and by dates newest first unless told otherwise.
    direction = query.get("direction", "asc" if sort == "full_name" else "desc")
    if visibility not in _VISIBILITIES or sort not in _REPO_SORTS or direction not in {"asc", "desc"}:
        return _message(422, "Validation Failed")
    # Without the `repo` scope a token sees public repositories only.
    visible = [repo for repo in user.repos if not repo.private or _has_scope(token, "repo")]
    chosen = [repo for repo in visible if visibility in {"all", repo.visibility}]
    chosen.sort(key=_REPO_SORTS[sort], reverse=direction == "desc")
    return _paginated(request, [_repo_json(request, repo) for repo in chosen])


routes = [
    Route("/user", get_user),
    Route("/user/emails", list_emails),
    Route("/user/orgs", list_orgs),
    Route("/user/teams", list_teams),
    Route("/user/repos", list_repos),
]
