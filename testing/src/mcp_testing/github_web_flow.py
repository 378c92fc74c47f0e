"""GitHub's OAuth web application flow as GitHub answers it: the sign-in page and the code-for-token exchange.

Mirrors https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps: problems
with the client or its redirect_uri show a page and never redirect; token errors are HTTP 200 bodies.
"""

from __future__ import annotations

import base64
import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_testing.github_state import GitHubState, OAuthApp, state_of
from mcp_testing.standin_http import pkce_matches

_ERROR_DOCS = "https://docs.github.com/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
# The fields a sign-in form carries over from the authorization request.
_CARRIED = ("client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method")


@dataclass(frozen=True)
class _AuthorizationRequest:
    app: OAuthApp
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    code_challenge: str | None


def _parse_authorization(
    state: GitHubState, params: Mapping[str, str]
) -> _AuthorizationRequest | HTMLResponse:
    app = state.apps.get(params.get("client_id", ""))
    if app is None:
        return _error_page("The client_id is not associated with any OAuth application.")
    redirect_uri = params.get("redirect_uri") or app.callback_url
    if not _redirect_uri_allowed(redirect_uri, app.callback_url):
        return _error_page("The redirect_uri is not associated with this application.")
    challenge = params.get("code_challenge") or None
    if challenge is not None and params.get("code_challenge_method", "S256") != "S256":
        return _error_page("The code_challenge_method must be S256.")
    return _AuthorizationRequest(
        app=app,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scopes=_split_scopes(params.get("scope", "")),
        code_challenge=challenge,
    )


def _redirect_uri_allowed(redirect_uri: str, callback_url: str) -> bool:
    """GitHub's rule: same scheme, host and port as the app's callback URL; path equal to it or below it."""
    wanted, given = urlsplit(callback_url), urlsplit(redirect_uri)
    base_path = wanted.path.rstrip("/")
    return (given.scheme, given.netloc) == (wanted.scheme, wanted.netloc) and (
        given.path == wanted.path or given.path.startswith(base_path + "/")
    )


def _split_scopes(scope: str) -> tuple[str, ...]:
    """GitHub accepts scopes separated by spaces or commas."""
    return tuple(dict.fromkeys(part for part in scope.replace(",", " ").split() if part))


def _error_page(message: str) -> HTMLResponse:
    body = f"<!doctype html><title>Application error</title><h1>Error</h1><p>{html.escape(message)}"
    return HTMLResponse(body, status_code=400)


def _sign_in_form(params: Mapping[str, str], error: str | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _CARRIED
        if name in params
    )
    alert = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return (
        "<!doctype html><title>Sign in to GitHub</title><h1>Sign in to GitHub (stand-in)</h1>"
        f'{alert}<form method="post" action="/login/oauth/authorize">{hidden}'
        f'<label>Username <input type="text" name="login" value="{html.escape(params.get("login", ""))}">'
        '</label> <button type="submit" name="decision" value="authorize">Authorize</button>'
        ' <button type="submit" name="decision" value="cancel">Cancel</button></form>'
    )


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


def _approve(state: GitHubState, request: _AuthorizationRequest, login: str) -> RedirectResponse:
    code = state.issue_code(request.app, login, request.redirect_uri, request.scopes, request.code_challenge)
    answer = {"code": code}
    if request.state is not None:
        answer["state"] = request.state
    return _redirect(request.redirect_uri, answer)


async def authorize_page(request: Request) -> Response:
    state = state_of(request)
    params = dict(request.query_params)
    parsed = _parse_authorization(state, params)
    if isinstance(parsed, HTMLResponse):
        return parsed
    if state.auto_login is not None:
        return _approve(state, parsed, state.auto_login)
    return HTMLResponse(_sign_in_form(params))


async def authorize_submit(request: Request) -> Response:
    state = state_of(request)
    async with request.form() as form:
        params = {key: value for key, value in form.items() if isinstance(value, str)}
    parsed = _parse_authorization(state, params)
    if isinstance(parsed, HTMLResponse):
        return parsed
    if params.get("decision") == "cancel":
        denied = {
            "error": "access_denied",
            "error_description": "The user has denied your application access.",
            "error_uri": _ERROR_DOCS,
        }
        if parsed.state is not None:
            denied["state"] = parsed.state
        return _redirect(parsed.redirect_uri, denied)
    login = params.get("login", "")
    if login not in state.users:
        return HTMLResponse(_sign_in_form(params, error="Incorrect username."), status_code=401)
    return _approve(state, parsed, login)


def _client_credentials(request: Request, form: Mapping[str, str]) -> tuple[str, str]:
    """Client credentials from HTTP Basic if sent, else from the form; GitHub accepts either."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _token_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description, "error_uri": _ERROR_DOCS}


def _exchange(state: GitHubState, request: Request, form: Mapping[str, str]) -> dict[str, str]:
    client_id, client_secret = _client_credentials(request, form)
    app = state.apps.get(client_id)
    if app is None or not secrets.compare_digest(app.client_secret, client_secret):
        return _token_error(
            "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."
        )
    code = state.consume_code(form.get("code", ""), client_id)
    if code is None:
        return _token_error("bad_verification_code", "The code passed is incorrect or expired.")
    if form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
        return _token_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        )
    verifier = form.get("code_verifier", "")
    if code.code_challenge is not None and not pkce_matches(code.code_challenge, verifier):
        return _token_error("bad_verification_code", "The code_verifier does not match the code_challenge.")
    token = state.issue_token(code.login, code.scopes, client_id)
    return {"access_token": token, "token_type": "bearer", "scope": ",".join(code.scopes)}


async def access_token(request: Request) -> Response:
    async with request.form() as form:
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    answer = _exchange(state_of(request), request, fields)
    # GitHub answers form-encoded unless the client asks for JSON.
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(answer)
    return Response(urlencode(answer), media_type="application/x-www-form-urlencoded")


routes = [
    Route("/login/oauth/authorize", authorize_page, methods=["GET"]),
    Route("/login/oauth/authorize", authorize_submit, methods=["POST"]),
    Route("/login/oauth/access_token", access_token, methods=["POST"]),
]
