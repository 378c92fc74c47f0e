"""The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1), GET /authorize.

Order matters (RFC 9700 §4.11.2): until the client and its redirect URI are verified, errors
are shown as a page and never redirected; after that, they go back to the client with
`error`, `state` and `iss`. Nothing is sent upstream before the user approves this client on
our consent page (MCP spec, confused deputy); a user with a live session and a remembered
consent for the same client, resource and scopes gets a code at once.

`prompt=consent` shows the page again, except when the request asks for `offline_access` and
the remembered consent already covers it: MCP clients send `prompt=consent` on every request
that includes `offline_access` (SEP-2207, after OIDC Core §11), and §11 lets the server rely
on that earlier consent — otherwise remembered consent could never apply to them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from mcp_auth_server.db.models import Client
from mcp_auth_server.endpoints.dependencies import RuntimeDep, SessionDep
from mcp_auth_server.endpoints.sign_in import issue_code_redirect, user_of_session
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.oauth.rfc7636_pkce import challenge_problem
from mcp_auth_server.oauth.rfc8252_redirect_uris import is_loopback_redirect, matches_registered
from mcp_auth_server.oauth.rfc9207_issuer_identification import authorization_response_url
from mcp_auth_server.oauth.scopes import describe, requested_scopes
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import consents
from mcp_auth_server.store.authorization_requests import REQUEST_TTL, create_request
from mcp_auth_server.store.resources import OFFLINE_ACCESS, RegisteredResource
from mcp_auth_server.web.cookies import BROWSER
from mcp_auth_server.web.pages import error_page, render
from mcp_auth_server.web.rate_limits import client_ip

router = APIRouter()
MAX_STATE = 2048  # authorization_requests.client_state
SINGLE_VALUED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "prompt",
)


@router.get("/authorize", summary="Authorization endpoint (RFC 6749 §4.1.1)")
async def authorize(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    params = request.query_params
    limits = runtime.rate_limits
    limits.check(limits.authorize, client_ip(request), params.get("client_id"))
    # RFC 6749 §3.1: a parameter sent twice makes the request invalid; decide before trusting any.
    repeated = [name for name in SINGLE_VALUED if len(params.getlist(name)) > 1]
    if "client_id" in repeated or "redirect_uri" in repeated:
        return error_page(
            runtime.templates, 400, "Invalid request", "client_id and redirect_uri must appear once."
        )
    try:
        client = await runtime.clients.find(session, params.get("client_id", ""))
    except InvalidMetadataDocument as exc:
        return error_page(
            runtime.templates,
            400,
            "Unverifiable application",
            f"This application's metadata document was refused: {exc}. It was not sent anywhere.",
        )
    if client is None:
        return error_page(
            runtime.templates,
            400,
            "Unknown application",
            "This application is not registered with this server, so it was not sent anywhere.",
        )
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or matches_registered(redirect_uri, client.redirect_uris) is None:
        return error_page(
            runtime.templates,
            400,
            "Invalid redirect address",
            "The application asked to be answered at an address it did not register. "
            "It was not sent anywhere.",
        )
    state = params.get("state")
    try:
        return await _authorize_verified_client(request, runtime, session, client, redirect_uri, repeated)
    except OAuthError as exc:
        url = authorization_response_url(
            redirect_uri,
            runtime.settings.auth_issuer,
            {"error": exc.error, "error_description": exc.description, "state": state},
        )
        return RedirectResponse(url, status_code=302)


async def _authorize_verified_client(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    client: Client,
    redirect_uri: str,
    repeated: list[str],
) -> Response:
    params = request.query_params
    if repeated:
        raise OAuthError("invalid_request", f"{', '.join(repeated)} must appear at most once")
    state = params.get("state")
    if state is not None and (len(state) > MAX_STATE or "\x00" in state):
        # Stored until the callback; refused here rather than failing in the database (a 500).
        raise OAuthError("invalid_request", f"state must be text of at most {MAX_STATE} characters")
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    problem = challenge_problem(params.get("code_challenge"), params.get("code_challenge_method"))
    if problem:
        raise OAuthError("invalid_request", problem)
    resource = await _resource(runtime, session, params.getlist("resource"))
    scopes = requested_scopes(params.get("scope"), resource, "refresh_token" in client.grant_types)
    prompt = params.get("prompt")
    binding, new_binding = runtime.cookies.browser_binding(request)
    user = await user_of_session(runtime, session, request)
    code_challenge = params["code_challenge"]

    if (
        user is not None
        and (prompt != "consent" or OFFLINE_ACCESS in scopes)
        and await consents.covers(session, user.id, client.client_id, resource.resource, scopes)
    ):
        redirect = await issue_code_redirect(
            runtime,
            session,
            client_id=client.client_id,
            user=user,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            resource=resource.resource,
            scopes=scopes,
            client_state=params.get("state"),
            status_code=302,
        )
        await session.commit()
        return redirect
    if prompt == "none":
        raise OAuthError(
            "login_required" if user is None else "consent_required",
            "the user must sign in or approve this application",
        )

    request_id = create_request(
        session,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        client_state=params.get("state"),
        code_challenge=code_challenge,
        resource=resource.resource,
        scopes=scopes,
        browser_binding=binding,
    )
    await session.commit()
    cimd_host = urlsplit(client.client_id).hostname if client.origin == "cimd" else None
    response = render(
        runtime.templates,
        "consent.html",
        client_name=client.client_name or "An unnamed application",
        client_id=client.client_id,
        client_host=cimd_host,
        redirect_host=urlsplit(redirect_uri).netloc or redirect_uri.split(":", 1)[0] + ":",
        localhost_only=all(is_loopback_redirect(uri) for uri in client.redirect_uris),
        resource=resource.resource,
        resource_name=resource.name,
        scopes=[
            {"name": scope, "description": describe(scope, resource.scope_descriptions)} for scope in scopes
        ],
        user_login=user.login if user else None,
        upstream_name=runtime.upstream.display_name,
        request_id=request_id,
        csrf_token=runtime.cookies.csrf_token(binding, request_id),
        action=runtime.url("/consent"),
    )
    if new_binding:
        runtime.cookies.write(response, BROWSER, binding, max_age=REQUEST_TTL * 6)
    return response


async def _resource(runtime: Runtime, session: AsyncSession, values: list[str]) -> RegisteredResource:
    await runtime.resources.refresh_if_stale(session)
    if len(values) > 1:
        raise OAuthError("invalid_target", "one resource per request: tokens have a single audience")
    if not values:
        known = runtime.resources.all()
        if len(known) == 1:  # RFC 8707 §2: the server may pick its default resource
            return known[0]
        raise OAuthError("invalid_target", "the resource parameter (RFC 8707) is required")
    return runtime.resources.lookup(values[0])
