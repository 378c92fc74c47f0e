"""/callback: the upstream provider sends the browser back here after sign-in.

The `state` must be one we minted after consent, unused, unexpired, and presented by the same
browser. Then the provider's answer becomes a user, a browser session and a code for the client.
Every other outcome goes back to the client too, whose redirect URI was verified at /authorize and
approved by the user (RFC 6749 §4.1.2.1, with `state` and `iss`): the person cancelling or being
refused at the provider, or not admitted here, is `access_denied`; the provider failing is
`temporarily_unavailable`. A state minted by /account/login instead signs the person in to their
own account pages (endpoints/account_session.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcp_auth_server.endpoints.account_session import finish_account_sign_in
from mcp_auth_server.endpoints.consent import answer_approved
from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.sign_in import error_redirect
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.store import audit
from mcp_auth_server.store.account_sign_ins import take_sign_in
from mcp_auth_server.store.authorization_requests import take_by_state
from mcp_auth_server.store.browser_sessions import start_session
from mcp_auth_server.store.users import upsert_user, user_standing_of
from mcp_auth_server.upstreams.base import AccessDenied, UpstreamRejected, UpstreamUnavailable
from mcp_auth_server.web.cookies import BROWSER, SESSION
from mcp_auth_server.web.pages import error_page

router = APIRouter()


@router.api_route("/callback", methods=["GET", "POST"], include_in_schema=False)
async def callback(request: Request, runtime: RuntimeDep) -> Response:
    params = {key: str(value) for key, value in request.query_params.items()}
    if request.method == "POST":  # the dev upstream's form, and providers answering with form_post
        params.update({key: str(value) for key, value in (await request.form()).items()})
    state = params.get("state", "")
    binding = runtime.cookies.read(request, BROWSER)
    async with transaction(runtime) as session:
        taken = await take_by_state(
            session, state, binding, runtime.upstream_request_box, runtime.url("/callback")
        )
        if taken is None:
            # Not an OAuth client's request: maybe a sign-in to the user's own account pages.
            account = await take_sign_in(
                session, state, binding, runtime.upstream_request_box, runtime.url("/callback")
            )
            if account is None:
                return error_page(
                    runtime.templates,
                    400,
                    "Sign-in expired",
                    "This sign-in link has expired, was already used, or was started in another browser. "
                    "Start again from the application.",
                )
    if taken is None:
        assert account is not None  # answered above otherwise
        # The state is spent (committed above) whatever happens next.
        return await finish_account_sign_in(runtime, params, account)
    row, upstream_request = taken  # the state is spent (committed above) whatever happens next

    def back_to_client(error: str, description: str) -> Response:
        return error_redirect(runtime, row.redirect_uri, row.client_state, error, description, 303)

    try:
        identity = await runtime.upstream.handle_callback(params, upstream_request)
    except (AccessDenied, UpstreamRejected) as exc:
        async with transaction(runtime) as session:
            audit.record(session, "sign_in_refused", client_id=row.client_id, reason=str(exc))
        name = runtime.upstream.display_name
        return back_to_client("access_denied", f"sign-in with {name} did not complete: {exc}")
    except UpstreamUnavailable as exc:
        name = runtime.upstream.display_name
        return back_to_client("temporarily_unavailable", f"{name} is unavailable: {exc}")

    async with transaction(runtime) as session:
        user = await upsert_user(session, identity, runtime.upstream_token_box)
        standing = await user_standing_of(session, user, runtime.upstream.name)
        policy = request_policy(runtime, session)
        try:
            await policy.admit(standing)
        except CredentialRefused as refused:
            audit.record(
                session, "sign_in_refused", user_id=user.id, client_id=row.client_id, reason=str(refused)
            )
            return back_to_client("access_denied", "the user may not use this service")
        session_id = start_session(session, user.id, runtime.settings.auth_session_ttl)
        audit.record(session, "sign_in", user_id=user.id, client_id=row.client_id, provider=identity.provider)
        response = await answer_approved(runtime, session, policy, row, user, standing)
    runtime.cookies.write(response, SESSION, session_id, max_age=runtime.settings.auth_session_ttl)
    return response
