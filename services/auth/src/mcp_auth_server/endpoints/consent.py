"""POST /consent: the user's decision on the consent page.

The form is accepted only from the browser that loaded it (binding cookie + CSRF token), and
answered with 303 so a reload never re-submits it. Approval with no signed-in user creates the
upstream `state` now — never before — and sends the browser upstream.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mcp_auth_server.endpoints.dependencies import RuntimeDep, SessionDep
from mcp_auth_server.endpoints.sign_in import (
    answer_with_code,
    error_redirect_url,
    upstream_unavailable_page,
    user_of_session,
)
from mcp_auth_server.store import audit
from mcp_auth_server.store.authorization_requests import discard, pending_request, start_upstream
from mcp_auth_server.upstreams.base import UpstreamUnavailable
from mcp_auth_server.web.cookies import BROWSER
from mcp_auth_server.web.pages import error_page

router = APIRouter()


@router.post("/consent", include_in_schema=False)
async def consent(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
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
    row = await pending_request(session, request_id, binding)
    expired = error_page(
        runtime.templates,
        400,
        "Sign-in expired",
        "This sign-in request has expired or was already answered. Start again from the application.",
    )
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
        await session.commit()
        url = error_redirect_url(
            runtime, row.redirect_uri, row.client_state, "access_denied", "the user denied the request"
        )
        return RedirectResponse(url, status_code=303)

    user = await user_of_session(runtime, session, request)
    if user is not None:
        if not await discard(session, row):
            return expired
        response = await answer_with_code(runtime, session, row, user)
        await session.commit()
        return response
    upstream = await start_upstream(session, row, runtime.upstream_request_box, runtime.url("/callback"))
    if upstream is None:
        return expired
    await session.commit()
    try:
        # An OIDC provider's authorization endpoint comes from its discovery document.
        login_url = await runtime.upstream.login_url(upstream)
    except UpstreamUnavailable as exc:
        return upstream_unavailable_page(runtime, row.redirect_uri, row.client_state, exc)
    return RedirectResponse(login_url, status_code=303)
