"""The user's page of connected applications: who can use which MCP server for them, and revoking it.

GET /account/apps lists the signed-in user's live grants (or offers to sign in); each row's
Revoke button POSTs to /account/apps/revoke with a CSRF token bound to the browser cookie
(the consent page's rule, web/cookies.py) and is answered with 303 back to the page.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mcp_auth_server.endpoints.account_session import (
    ACCOUNT_HOME,
    BINDING_MAX_AGE,
    LOGOUT_PURPOSE,
    forged_form_page,
    upstream_unavailable_page,
)
from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.sign_in import SignedIn, signed_in_user
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.oauth.scopes import describe
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.store import audit
from mcp_auth_server.store.browser_sessions import live_session
from mcp_auth_server.store.connected_apps import HeldGrant, by_application, held_grants, revoke_connection
from mcp_auth_server.store.resources import RegisteredResource
from mcp_auth_server.store.standings import GrantStanding, client_standing
from mcp_auth_server.web.cookies import BROWSER, SESSION
from mcp_auth_server.web.pages import render

router = APIRouter()
REVOKE_PURPOSE = "account:revoke"


@router.get(ACCOUNT_HOME, include_in_schema=False)
async def connected_apps_page(request: Request, runtime: RuntimeDep) -> Response:
    async with transaction(runtime) as session:
        policy = request_policy(runtime, session)
        try:
            signed_in = await signed_in_user(runtime, session, request, policy)
        except OAuthError as exc:
            return upstream_unavailable_page(runtime, exc.description)
        if signed_in is None:
            return render(
                runtime.templates,
                "connected_apps.html",
                user_login=None,
                sign_in_url=runtime.url("/account/login"),
                upstream_name=runtime.upstream.display_name,
            )
        apps = by_application(
            await _still_good(policy, signed_in, await held_grants(session, signed_in.user.id))
        )
    user = signed_in.user
    known = {registered.resource: registered for registered in runtime.resources.all()}
    binding, _ = runtime.cookies.browser_binding(request)
    response = render(
        runtime.templates,
        "connected_apps.html",
        user_login=user.login or user.name or user.email or "you",
        apps=[
            {
                "client_id": app.client_id,
                "client_name": app.client_name,
                "resources": [
                    {
                        "resource": r.resource,
                        "name": known[r.resource].name if r.resource in known else r.resource,
                        "scopes": [
                            {"name": scope, "description": describe(scope, _descriptions(known, r.resource))}
                            for scope in r.scopes
                        ],
                        "granted": _when(r.granted_at),
                        "last_used": _when(r.last_used_at),
                        "key_bound": r.key_bound,
                    }
                    for r in app.resources
                ],
            }
            for app in apps
        ],
        revoke_action=runtime.url("/account/apps/revoke"),
        revoke_csrf_token=runtime.cookies.csrf_token(binding, REVOKE_PURPOSE),
        logout_action=runtime.url("/account/logout"),
        logout_csrf_token=runtime.cookies.csrf_token(binding, LOGOUT_PURPOSE),
    )
    # Written on every view, so the forms of a page left open keep working as long as the binding.
    runtime.cookies.write(response, BROWSER, binding, max_age=BINDING_MAX_AGE)
    return response


async def _still_good(
    policy: CredentialPolicy, signed_in: SignedIn, held: list[HeldGrant]
) -> list[HeldGrant]:
    """The grants the credential policy still honours: the page never shows one that no longer works."""
    good = []
    for entry in held:
        grant = entry.grant
        question = Question(
            Path.CONNECTED_APPS,
            client_standing(entry.client),
            grant.resource,
            grant.scopes,
            user=signed_in.standing,
            grant=GrantStanding(grant.id, grant.revoked_at is not None, grant.expires_at),
            consent=entry.consent,
        )
        try:
            await policy.decide(question)
        except CredentialRefused:
            continue
        good.append(entry)
    return good


@router.post("/account/apps/revoke", include_in_schema=False)
async def revoke_app(request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    client_id, resource, csrf_token = (
        str(form.get(name, "")) for name in ("client_id", "resource", "csrf_token")
    )
    if not runtime.cookies.csrf_valid(runtime.cookies.read(request, BROWSER), REVOKE_PURPOSE, csrf_token):
        return forged_form_page(runtime)
    async with transaction(runtime) as session:
        # Giving access up needs only the person's live session, not the upstream vouching for them
        # again: revoking works while the upstream is down, and harms no one when they were removed.
        browser_session = await live_session(session, runtime.cookies.read(request, SESSION))
        if browser_session is not None:
            user_id = browser_session.user_id
            for grant_id, dpop_jkt in await revoke_connection(session, user_id, client_id, resource):
                audit.record(
                    session,
                    "grant_revoked",
                    user_id=user_id,
                    client_id=client_id,
                    grant_id=grant_id,
                    by="user",
                    **audit.key_binding(dpop_jkt),
                )
    # A session that ended meanwhile lands on the page's sign-in offer; a reload never re-posts.
    return RedirectResponse(runtime.url(ACCOUNT_HOME), status_code=303)


def _descriptions(known: dict[str, RegisteredResource], resource: str) -> Mapping[str, str]:
    return known[resource].scope_descriptions if resource in known else {}


def _when(moment: int | None) -> str:
    if moment is None:
        return "never"
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
