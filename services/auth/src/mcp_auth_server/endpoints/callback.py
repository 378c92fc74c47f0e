"""/callback: the upstream provider sends the browser back here after sign-in.

The `state` must be one we minted after consent, unused, unexpired, and presented by the same
browser. Then the provider's answer becomes a user, a browser session and a code for the client.
A refused user sees a page and the client gets `access_denied`; a failing provider gives a
page and `temporarily_unavailable` — never a 500. A state minted by /account/login instead
signs the person in to their own account pages (endpoints/account_session.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcp_auth_server.endpoints.account_session import finish_account_sign_in
from mcp_auth_server.endpoints.dependencies import RuntimeDep, SessionDep
from mcp_auth_server.endpoints.sign_in import (
    answer_with_code,
    error_redirect_url,
    upstream_unavailable_page,
)
from mcp_auth_server.store import audit
from mcp_auth_server.store.account_sign_ins import take_sign_in
from mcp_auth_server.store.authorization_requests import take_by_state
from mcp_auth_server.store.browser_sessions import start_session
from mcp_auth_server.store.users import upsert_user
from mcp_auth_server.upstreams.base import AccessDenied, UpstreamRejected, UpstreamUnavailable
from mcp_auth_server.web.cookies import BROWSER, SESSION
from mcp_auth_server.web.pages import error_page

router = APIRouter()


@router.api_route("/callback", methods=["GET", "POST"], include_in_schema=False)
async def callback(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    state = request.query_params.get("state")
    if state is None and request.method == "POST":
        state = str((await request.form()).get("state", ""))
    taken = await take_by_state(
        session,
        state or "",
        runtime.cookies.read(request, BROWSER),
        runtime.upstream_request_box,
        runtime.url("/callback"),
    )
    if taken is None:
        # Not an OAuth client's request: maybe a sign-in to the user's own account pages.
        account = await take_sign_in(
            session,
            state or "",
            runtime.cookies.read(request, BROWSER),
            runtime.upstream_request_box,
            runtime.url("/callback"),
        )
        if account is not None:
            await session.commit()  # the state is spent whatever happens next
            return await finish_account_sign_in(runtime, session, request, account)
        return error_page(
            runtime.templates,
            400,
            "Sign-in expired",
            "This sign-in link has expired, was already used, or was started in another browser. "
            "Start again from the application.",
        )
    row, upstream_request = taken
    await session.commit()  # the state is spent whatever happens next

    def back_to_client(error: str, description: str) -> str:
        return error_redirect_url(runtime, row.redirect_uri, row.client_state, error, description)

    try:
        identity = await runtime.upstream.handle_callback(request, upstream_request)
    except AccessDenied as exc:
        audit.record(session, "sign_in_refused", client_id=row.client_id, reason=str(exc))
        await session.commit()
        return error_page(
            runtime.templates,
            403,
            "Access not allowed",
            str(exc),
            back_to_client("access_denied", "the user is not allowed to use this service"),
        )
    except UpstreamRejected as exc:
        return error_page(
            runtime.templates,
            400,
            "Sign-in did not complete",
            str(exc),
            back_to_client("access_denied", "sign-in with the identity provider did not complete"),
        )
    except UpstreamUnavailable as exc:
        return upstream_unavailable_page(runtime, row.redirect_uri, row.client_state, exc)

    user = await upsert_user(session, identity, runtime.upstream_token_box)
    session_id = start_session(session, user.id, runtime.settings.auth_session_ttl)
    audit.record(session, "sign_in", user_id=user.id, client_id=row.client_id, provider=identity.provider)
    response = await answer_with_code(runtime, session, row, user)
    await session.commit()
    runtime.cookies.write(response, SESSION, session_id, max_age=runtime.settings.auth_session_ttl)
    return response
