"""POST /consent: the user's decision on the consent page.

The form is accepted only from the browser that loaded it (binding cookie + CSRF token), and
answered with 303 so a reload never re-submits it. Approval with no signed-in user creates the
upstream `state` now — never before — and sends the browser upstream. Approval by a signed-in
user asks the credential policy first, as every path to a credential does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from mcp_auth_server.db.models import AuthorizationRequest, User
from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.sign_in import CodeRequest, error_redirect, issue_code_redirect, signed_in_user
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.authorization_requests import discard, pending_request, start_upstream
from mcp_auth_server.store.clients import get_client
from mcp_auth_server.store.standings import UserStanding, client_standing
from mcp_auth_server.upstreams.base import UpstreamUnavailable
from mcp_auth_server.web.cookies import BROWSER
from mcp_auth_server.web.pages import error_page

router = APIRouter()


@router.post("/consent", include_in_schema=False)
async def consent(request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    request_id, csrf_token, decision = (
        str(form.get(name, "")) for name in ("request_id", "csrf_token", "decision")
    )
    binding = runtime.cookies.read(request, BROWSER)
    if not runtime.cookies.csrf_valid(binding, request_id, csrf_token):
        return error_page(
            runtime.templates,
            403,
            "Request refused",
            "This form did not come from this browser's sign-in page. Start again from the application.",
        )
    expired = error_page(
        runtime.templates,
        400,
        "Sign-in expired",
        "This sign-in request has expired or was already answered. Start again from the application.",
    )
    async with transaction(runtime) as session:
        row = await pending_request(session, request_id, binding)
        if row is None:
            return expired
        if decision not in ("approve", "deny"):
            return error_page(runtime.templates, 400, "Invalid request", "Choose Approve or Deny.")
        # One answer per form, even when it is submitted twice at once (a double click, or a race
        # against the person's own click): the first submission to claim the row wins.
        if decision == "deny":
            if not await discard(session, row):
                return expired
            audit.record(session, "consent_denied", client_id=row.client_id, resource=row.resource)
            return error_redirect(
                runtime,
                row.redirect_uri,
                row.client_state,
                "access_denied",
                "the user denied the request",
                303,
            )
        policy = request_policy(runtime, session)
        try:
            signed_in = await signed_in_user(runtime, session, request, policy)
        except OAuthError as exc:  # the upstream could not re-check the person: the client hears it
            if not await discard(session, row):
                return expired
            return error_redirect(
                runtime, row.redirect_uri, row.client_state, exc.error, exc.description, 303
            )
        if signed_in is not None:
            if not await discard(session, row):
                return expired
            return await answer_approved(runtime, session, policy, row, signed_in.user, signed_in.standing)
        upstream = await start_upstream(session, row, runtime.upstream_request_box, runtime.url("/callback"))
        if upstream is None:
            return expired
    try:
        # An OIDC provider's authorization endpoint comes from its discovery document.
        login_url = await runtime.upstream.login_url(upstream)
    except UpstreamUnavailable as exc:
        return error_redirect(
            runtime,
            row.redirect_uri,
            row.client_state,
            "temporarily_unavailable",
            f"the identity provider is unavailable: {exc}",
            303,
        )
    return RedirectResponse(login_url, status_code=303)


async def answer_approved(
    runtime: Runtime,
    session: AsyncSession,
    policy: CredentialPolicy,
    row: AuthorizationRequest,
    user: User,
    standing: UserStanding,
) -> Response:
    """Answer an approved request with a code, if the credential policy allows it; else with its error."""
    client = await get_client(session, row.client_id)
    approved = CodeRequest(
        client_id=row.client_id,
        redirect_uri=row.redirect_uri,
        code_challenge=row.code_challenge,
        resource=row.resource,
        scopes=row.scopes,
        client_state=row.client_state,
        dpop_jkt=row.dpop_jkt,
    )
    if client is None:  # deleted meanwhile: its requests went with it, but a race can still get here
        return error_redirect(
            runtime, row.redirect_uri, row.client_state, "access_denied", "unknown client", 303
        )
    question = Question(
        Path.CONSENT_APPROVAL, client_standing(client), row.resource, row.scopes, user=standing
    )
    try:
        await policy.decide(question)
    except CredentialRefused as refused:
        audit.record(
            session, "sign_in_refused", user_id=user.id, client_id=row.client_id, reason=str(refused)
        )
        error = refused.refusal.error if refused.refusal.error != "invalid_grant" else "access_denied"
        return error_redirect(runtime, row.redirect_uri, row.client_state, error, str(refused), 303)
    return await issue_code_redirect(runtime, session, user, approved, 303)
