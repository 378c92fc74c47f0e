"""The OIDC provider stand-in's endpoints: discovery, JWKS, authorization (sign-in form), token, userinfo.

Follows OpenID Connect Core 1.0 and Discovery 1.0 (and RFC 6749/7636) the way a real provider answers:
problems with the client or its redirect_uri show a page and never redirect (RFC 6749 §4.1.2.1), token
errors are 400/401 JSON. The Google flavour publishes Google's endpoint paths, so a connector that
hard-codes a path instead of reading discovery fails here too.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_testing.oidc_state import Client, Flavour, OidcState, RouteGroup, User, state_of
from mcp_testing.standin_http import pkce_matches


@dataclass(frozen=True)
class Paths:
    authorize: str
    token: str
    userinfo: str
    jwks: str


DISCOVERY = "/.well-known/openid-configuration"
PATHS: dict[Flavour, Paths] = {
    "generic": Paths("/authorize", "/token", "/userinfo", "/jwks"),
    # accounts.google.com's discovery document names these (on several hosts; one host here).
    "google": Paths("/o/oauth2/v2/auth", "/token", "/v1/userinfo", "/oauth2/v3/certs"),
}


def _endpoints() -> dict[str, RouteGroup]:
    endpoints: dict[str, RouteGroup] = {DISCOVERY: "discovery"}
    for paths in PATHS.values():
        endpoints[paths.authorize] = "authorize"
        endpoints[paths.token] = "token"
        endpoints[paths.userinfo] = "userinfo"
        endpoints[paths.jwks] = "jwks"
    return endpoints


ENDPOINTS = _endpoints()


def route_group(path: str) -> RouteGroup | None:
    return ENDPOINTS.get(path)


def _issuer(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def discovery(request: Request) -> Response:
    """OIDC Discovery 1.0 §3 and §4.2."""
    state = state_of(request)
    base, paths = _issuer(request), PATHS[state.flavour]
    algs = state.signing_algs_override or sorted({key.alg for key in state.keys})
    scopes = ["openid", "email", "profile"] + (["offline_access"] if state.flavour == "generic" else [])
    return JSONResponse(
        {
            "issuer": state.issuer_override or base,
            "authorization_endpoint": base + paths.authorize,
            "token_endpoint": base + paths.token,
            "userinfo_endpoint": base + paths.userinfo,
            "jwks_uri": base + paths.jwks,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "scopes_supported": scopes,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "claims_supported": ["sub", "iss", "aud", "email", "email_verified", "name", "picture", "hd"],
        }
    )


async def jwks(request: Request) -> Response:
    return JSONResponse({"keys": [key.public_jwk() for key in state_of(request).keys]})


# --- authorization endpoint (OIDC Core §3.1.2) ------------------------------------------------------


@dataclass(frozen=True)
class _AuthorizationRequest:
    client: Client
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    params: Mapping[str, str]


def _parse(state: OidcState, params: Mapping[str, str]) -> _AuthorizationRequest | Response:
    client = state.clients.get(params.get("client_id", ""))
    if client is None:
        return _error_page("The OAuth client was not found.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:  # exact match, OIDC Core §3.1.2.1
        return _error_page("The redirect_uri does not match the ones registered for this client.")
    scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
    problem = None
    if params.get("response_type") != "code":
        problem = ("unsupported_response_type", "only response_type=code is supported")
    elif "openid" not in scopes:
        problem = ("invalid_scope", "the openid scope is required")
    elif params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        problem = ("invalid_request", "code_challenge_method must be S256")
    if problem is not None:
        return _redirect(redirect_uri, {"error": problem[0], "error_description": problem[1]}, params)
    return _AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scopes=scopes,
        nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge") or None,
        params=params,
    )


def _error_page(message: str) -> HTMLResponse:
    body = f"<!doctype html><title>Error</title><h1>Authorization error</h1><p>{html.escape(message)}"
    return HTMLResponse(body, status_code=400)


def _redirect(redirect_uri: str, answer: dict[str, str], params: Mapping[str, str]) -> RedirectResponse:
    if params.get("state") is not None:
        answer["state"] = params["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(answer), status_code=302)


def _sign_in_form(path: str, params: Mapping[str, str], error: str | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
        if name not in ("login", "decision")
    )
    alert = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return (
        "<!doctype html><title>Sign in</title><h1>Sign in (OIDC stand-in)</h1>"
        f'{alert}<form method="post" action="{html.escape(path)}">{hidden}'
        '<label>Username <input type="text" name="login"></label>'
        ' <button type="submit" name="decision" value="allow">Allow</button>'
        ' <button type="submit" name="decision" value="deny">Deny</button></form>'
    )


def _approve(state: OidcState, request: _AuthorizationRequest, user: User) -> RedirectResponse:
    key = (user.sub, request.client.client_id)
    first_consent = key not in state.granted
    scopes = request.scopes
    prompt = request.params.get("prompt", "").split()
    if state.flavour == "google":
        # Google: a refresh token only for access_type=offline, and only when the user is shown the
        # consent screen (the first time, or every time with prompt=consent).
        offline = request.params.get("access_type") == "offline" and (first_consent or "consent" in prompt)
        if request.params.get("include_granted_scopes") == "true":
            scopes = tuple(dict.fromkeys([*scopes, *sorted(state.granted.get(key, set()))]))
    else:
        # OIDC Core §11: offline_access is honoured only together with prompt=consent.
        offline = "offline_access" in scopes and "consent" in prompt
    state.granted.setdefault(key, set()).update(scopes)
    code = state.issue_code(
        request.client,
        user,
        request.redirect_uri,
        scopes,
        nonce=request.nonce,
        code_challenge=request.code_challenge,
        offline=offline,
    )
    return _redirect(request.redirect_uri, {"code": code}, request.params)


async def authorize(request: Request) -> Response:
    state = state_of(request)
    if request.method == "GET":
        params = dict(request.query_params)
    else:
        async with request.form() as form:
            params = {key: value for key, value in form.items() if isinstance(value, str)}
    parsed = _parse(state, params)
    if isinstance(parsed, Response):
        return parsed
    if request.method == "GET":
        if state.auto_login is None:
            return HTMLResponse(_sign_in_form(request.url.path, params))
        return _approve(state, parsed, state.users[state.auto_login])
    if params.get("decision") == "deny":
        return _redirect(parsed.redirect_uri, {"error": "access_denied"}, params)
    user = state.users.get(params.get("login", ""))
    if user is None:
        return HTMLResponse(_sign_in_form(request.url.path, params, "Unknown user."), status_code=401)
    return _approve(state, parsed, user)


# --- token endpoint (OIDC Core §3.1.3, §12) -------------------------------------------------------


class _TokenError(Exception):
    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status_code = error, description, status_code


def _authenticate(state: OidcState, request: Request, form: Mapping[str, str]) -> Client:
    """client_secret_basic (RFC 6749 §2.3.1: both parts form-encoded before base64) or client_secret_post."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    client = state.clients.get(client_id)
    if client is None or client.client_secret != secret:
        raise _TokenError("invalid_client", "client authentication failed", 401)
    return client


def _code_grant(state: OidcState, issuer: str, client: Client, form: Mapping[str, str]) -> dict[str, Any]:
    code = state.consume_code(form.get("code", ""), client.client_id)
    if code is None:
        raise _TokenError("invalid_grant", "the code is invalid, expired or used")
    if form.get("redirect_uri") != code.redirect_uri:
        raise _TokenError("invalid_grant", "redirect_uri does not match the authorization request")
    verifier = form.get("code_verifier")
    if code.code_challenge is not None and not pkce_matches(code.code_challenge, verifier or ""):
        raise _TokenError("invalid_grant", "code_verifier does not match the code_challenge")
    if code.code_challenge is None and verifier is not None:
        raise _TokenError("invalid_grant", "a code_verifier for a request that had no code_challenge")
    access = state.issue_access_token(client.client_id, code.user.sub, code.scopes)
    body = _token_body(state, access.value, code.scopes)
    body["id_token"] = state.id_token(issuer, client.client_id, code.user, code.nonce)
    if code.offline:
        body["refresh_token"] = state.issue_refresh_token(client.client_id, code.user.sub, code.scopes).value
    return body


def _refresh_grant(state: OidcState, issuer: str, client: Client, form: Mapping[str, str]) -> dict[str, Any]:
    presented = state.refresh_tokens.get(form.get("refresh_token", ""))
    if presented is None or presented.revoked or presented.client_id != client.client_id:
        raise _TokenError("invalid_grant", "Token has been expired or revoked.")
    user = state.user_by_sub(presented.sub)
    if user is None:
        raise _TokenError("invalid_grant", "the user no longer exists")
    access = state.issue_access_token(client.client_id, presented.sub, presented.scopes)
    body = _token_body(state, access.value, presented.scopes)
    body["id_token"] = state.id_token(issuer, client.client_id, user, None)  # §12.2: no nonce
    if state.rotates_refresh_tokens:
        presented.revoked = True
        body["refresh_token"] = state.issue_refresh_token(client.client_id, user.sub, presented.scopes).value
    return body


def _token_body(state: OidcState, access_token: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.access_token_lifetime,
        "scope": " ".join(scopes),
    }


async def token(request: Request) -> Response:
    state = state_of(request)
    async with request.form() as raw:
        form = {key: value for key, value in raw.items() if isinstance(value, str)}
    try:
        client = _authenticate(state, request, form)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            body = _code_grant(state, _issuer(request), client, form)
        elif grant_type == "refresh_token":
            body = _refresh_grant(state, _issuer(request), client, form)
        else:
            raise _TokenError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    except _TokenError as exc:
        error = {"error": exc.error, "error_description": exc.description}
        return JSONResponse(error, status_code=exc.status_code, headers={"Cache-Control": "no-store"})
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def userinfo(request: Request) -> Response:
    """OIDC Core §5.3: the claims about the user of a live access token; RFC 6750 §3.1 errors."""
    state = state_of(request)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    access = state.live_access_token(value) if scheme.lower() == "bearer" else None
    user = state.user_by_sub(access.sub) if access is not None else None
    if user is None:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return JSONResponse({"sub": user.sub, **state.profile_claims(user)})


_HANDLERS = {
    "discovery": (discovery, ["GET"]),
    "jwks": (jwks, ["GET"]),
    "authorize": (authorize, ["GET", "POST"]),
    "token": (token, ["POST"]),
    "userinfo": (userinfo, ["GET", "POST"]),
}
routes = [Route(path, _HANDLERS[group][0], methods=_HANDLERS[group][1]) for path, group in ENDPOINTS.items()]
