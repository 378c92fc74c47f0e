"""Signing in to and out of the user's own account pages (/account/login, /account/logout).

The account pages are the auth service's own, not an OAuth client's: signing in sends the browser
straight to the upstream provider with a state bound to this browser (store/account_sign_ins),
and /callback hands the provider's answer back here, which starts a browser session and returns
to /account/apps. Signing out is a CSRF-protected POST that ends the session server-side.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.sign_in import signed_in_user
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.account_sign_ins import start_sign_in
from mcp_auth_server.store.authorization_requests import REQUEST_TTL
from mcp_auth_server.store.browser_sessions import end_browser_session, start_session
from mcp_auth_server.store.users import upsert_user, user_standing_of
from mcp_auth_server.upstreams.base import (
    AccessDenied,
    UpstreamRejected,
    UpstreamRequest,
    UpstreamUnavailable,
)
from mcp_auth_server.web.cookies import BROWSER, SESSION
from mcp_auth_server.web.pages import error_page

router = APIRouter()
ACCOUNT_HOME = "/account/apps"
LOGOUT_PURPOSE = "account:logout"
# The binding cookie outlives one sign-in (as on /authorize) so a page left open still posts.
BINDING_MAX_AGE = REQUEST_TTL * 6


@router.get("/account/login", include_in_schema=False)
async def account_login(request: Request, runtime: RuntimeDep) -> Response:
    async with transaction(runtime) as session:
        try:
            signed_in = await signed_in_user(runtime, session, request, request_policy(runtime, session))
        except OAuthError as exc:
            return upstream_unavailable_page(runtime, exc.description)
        if signed_in is not None:
            return RedirectResponse(runtime.url(ACCOUNT_HOME), status_code=303)
        binding, new_binding = runtime.cookies.browser_binding(request)
        upstream = start_sign_in(session, binding, runtime.upstream_request_box, runtime.url("/callback"))
    try:
        response: Response = RedirectResponse(await runtime.upstream.login_url(upstream), status_code=303)
    except UpstreamUnavailable as exc:
        response = upstream_unavailable_page(runtime, str(exc))
    if new_binding:
        runtime.cookies.write(response, BROWSER, binding, max_age=BINDING_MAX_AGE)
    return response


@router.post("/account/logout", include_in_schema=False)
async def account_logout(request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    binding = runtime.cookies.read(request, BROWSER)
    if not runtime.cookies.csrf_valid(binding, LOGOUT_PURPOSE, str(form.get("csrf_token", ""))):
        return forged_form_page(runtime)
    session_id = runtime.cookies.read(request, SESSION)
    if session_id:
        async with transaction(runtime) as session:
            await end_browser_session(session, session_id)
    response = RedirectResponse(runtime.url(ACCOUNT_HOME), status_code=303)
    runtime.cookies.clear(response, SESSION)
    return response


async def finish_account_sign_in(
    runtime: Runtime, params: Mapping[str, str], upstream: UpstreamRequest
) -> Response:
    """/callback for an account sign-in: the provider's answer becomes a session, then the account page."""
    try:
        identity = await runtime.upstream.handle_callback(params, upstream)
    except (AccessDenied, UpstreamRejected) as exc:
        async with transaction(runtime) as session:
            audit.record(session, "sign_in_refused", reason=str(exc), to="account")
        return error_page(runtime.templates, 403, "Access not allowed", str(exc))
    except UpstreamUnavailable as exc:
        return upstream_unavailable_page(runtime, str(exc))
    async with transaction(runtime) as session:
        user = await upsert_user(session, identity, runtime.upstream_token_box)
        try:
            await request_policy(runtime, session).admit(
                await user_standing_of(session, user, runtime.upstream.name)
            )
        except CredentialRefused as refused:
            audit.record(session, "sign_in_refused", user_id=user.id, reason=str(refused), to="account")
            return error_page(runtime.templates, 403, "Access not allowed", str(refused))
        session_id = start_session(session, user.id, runtime.settings.auth_session_ttl)
        audit.record(session, "sign_in", user_id=user.id, provider=identity.provider, to="account")
    response = RedirectResponse(runtime.url(ACCOUNT_HOME), status_code=303)
    runtime.cookies.write(response, SESSION, session_id, max_age=runtime.settings.auth_session_ttl)
    return response


def forged_form_page(runtime: Runtime) -> Response:
    return error_page(
        runtime.templates,
        403,
        "Request refused",
        "This form did not come from this browser's account page. Open the page again and retry.",
    )


def upstream_unavailable_page(runtime: Runtime, reason: str) -> Response:
    name = runtime.upstream.display_name
    return error_page(
        runtime.templates, 503, f"{name} is unavailable", f"{reason}. Please try again in a moment."
    )
