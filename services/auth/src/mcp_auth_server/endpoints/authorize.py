"""The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1), GET /authorize.

Order matters (RFC 9700 §4.11.2): until the client and its redirect URI are verified, errors
are shown as a page and never redirected; after that, they go back to the client with
`error`, `state` and `iss` — except for a dynamically registered client that the person at this
browser has not approved. Anyone can register one with any https redirect URI, so redirecting its
errors would make this server an open redirector (RFC 9700 §4.11.2): its errors found before consent
are shown on a page with a link to the client instead, which the person may follow. Only the approval
of the person at this browser (signed in here) lifts the page: anyone may be able to sign in (empty
allow-lists), and the attacker who registered the client could approve it once themselves.
Pre-registered clients are vouched for by the operator, and a client ID metadata document client's
redirect URIs are published by the owner of its client_id's domain (verified by fetching it over
https), so both keep redirecting. A person's own denial on the consent page always redirects
(endpoints/consent.py).

Nothing is sent upstream before the user approves this client on our consent page (MCP spec,
confused deputy).

A code is issued without a page only when the credential policy allows it (the user signed in and
still admitted, the consent remembered and covering the scopes) AND the client's identity is assured:
its redirect URI is https, matched exactly, off this machine (oauth/rfc8252_redirect_uris.identity_assured).
A loopback or private-use-scheme redirect can be claimed by any local program (RFC 8252 §8.6), so such a
client always gets the page ("you approved this application before"), as does every request with
`consent` in `prompt`. `prompt=none` never shows a
page: it answers `login_required`, `consent_required` or `interaction_required` (OIDC Core §3.1.2.6).

`dpop_jkt` (RFC 9449 §10) binds the code to the client's DPoP key: it is redeemed only with a proof
by that key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mcp_auth_server.db.models import Client
from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.sign_in import (
    CodeRequest,
    SignedIn,
    error_redirect,
    error_response_url,
    issue_code_redirect,
    signed_in_user,
)
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.errors import OAuthError, invalid_target
from mcp_auth_server.oauth.rfc7636_pkce import challenge_problem
from mcp_auth_server.oauth.rfc8252_redirect_uris import (
    identity_assured,
    is_loopback_redirect,
    matches_registered,
)
from mcp_auth_server.oauth.rfc9449_dpop import is_thumbprint
from mcp_auth_server.oauth.scopes import describe, requested_scopes
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused, check_client
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import consents
from mcp_auth_server.store.authorization_requests import REQUEST_TTL, create_request
from mcp_auth_server.store.browser_sessions import live_session
from mcp_auth_server.store.resources import RegisteredResource, UnknownResource
from mcp_auth_server.store.standings import client_standing
from mcp_auth_server.web.cookies import BROWSER, SESSION
from mcp_auth_server.web.hosts import redirect_target, shown_host
from mcp_auth_server.web.pages import error_page, render

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
    "dpop_jkt",
)


@router.get("/authorize", summary="Authorization endpoint (RFC 6749 §4.1.1)")
async def authorize(request: Request, runtime: RuntimeDep) -> Response:
    params = request.query_params
    # Per address only: the client id is a claim anyone can make, so it must not name whose budget is spent.
    await runtime.rate_limits.check_address(runtime.rate_limits.authorize, request)
    # RFC 6749 §3.1: a parameter sent twice makes the request invalid; decide before trusting any.
    repeated = [name for name in SINGLE_VALUED if len(params.getlist(name)) > 1]
    if "client_id" in repeated or "redirect_uri" in repeated:
        return error_page(
            runtime.templates, 400, "Invalid request", "client_id and redirect_uri must appear once."
        )
    try:
        lookup = await runtime.clients.look_up(params.get("client_id", ""))  # no connection held meanwhile
        await runtime.rate_limits.check_new_client(lookup.new, request)
    except InvalidMetadataDocument as exc:
        return error_page(
            runtime.templates,
            400,
            "Unverifiable application",
            f"This application's metadata document was refused: {exc}. It was not sent anywhere.",
        )
    async with transaction(runtime) as session:
        client = await runtime.clients.find(session, lookup)
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
        try:
            return await _authorize_verified_client(request, runtime, session, client, redirect_uri, repeated)
        except OAuthError as exc:
            if client.origin == "dcr" and not await _approved_here(runtime, session, request, client):
                url = error_response_url(
                    runtime, redirect_uri, params.get("state"), exc.error, exc.description
                )
                return error_page(
                    runtime.templates,
                    400,
                    "The application's request was refused",
                    f"The request could not be completed: {exc.description} ({exc.error}). You were not sent "
                    "back automatically because you have not approved this dynamically registered "
                    "application (while signed in here); follow the link only if you trust it.",
                    continue_url=url,
                )
            return error_redirect(runtime, redirect_uri, params.get("state"), exc.error, exc.description, 302)


async def _approved_here(runtime: Runtime, session: AsyncSession, request: Request, client: Client) -> bool:
    """Whether the person signed in at this browser has approved this client (RFC 9700 §4.11.2: then its
    redirect URI is one this person trusts, and an error may go there without a page)."""
    browser_session = await live_session(session, runtime.cookies.read(request, SESSION))
    return browser_session is not None and await consents.approved_by(
        session, browser_session.user_id, client.client_id
    )


async def _authorize_verified_client(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
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
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not is_thumbprint(dpop_jkt):
        raise OAuthError("invalid_request", "dpop_jkt must be an RFC 7638 SHA-256 JWK thumbprint")
    try:
        check_client(Path.CONSENT_APPROVAL, client_standing(client), has_user=True)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
    resource = await _resource(runtime, session, params.getlist("resource"))
    scopes = requested_scopes(
        params.get("scope"), resource.scopes, resource.default_scopes, "refresh_token" in client.grant_types
    )
    # OIDC Core §3.1.2.1: a space-delimited list; `none` stands alone.
    prompt = frozenset((params.get("prompt") or "").split())
    if "none" in prompt and len(prompt) > 1:
        raise OAuthError("invalid_request", "prompt=none cannot be combined with other values")
    approved = CodeRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        code_challenge=params["code_challenge"],
        resource=resource.resource,
        scopes=scopes,
        client_state=state,
        dpop_jkt=dpop_jkt,
    )
    policy = request_policy(runtime, session)
    signed_in = await signed_in_user(runtime, session, request, policy)
    remembered = False
    if signed_in is not None:
        consent = await consents.standing(session, signed_in.user.id, client.client_id, resource.resource)
        question = Question(
            Path.AUTHORIZE_SILENTLY,
            client_standing(client),
            resource.resource,
            scopes,
            user=signed_in.standing,
            consent=consent,
        )
        try:
            await policy.decide(question)
            remembered = True
        except CredentialRefused:
            remembered = False  # the page asks again
        if remembered and "consent" not in prompt and identity_assured(redirect_uri):
            return await issue_code_redirect(runtime, session, signed_in.user, approved, 302)
    if "none" in prompt:
        if signed_in is None:
            raise OAuthError("login_required", "the user must sign in")
        if not remembered:
            raise OAuthError("consent_required", "the user must approve this application")
        raise OAuthError("interaction_required", "the user must confirm this application on a page")
    return _consent_page(request, runtime, session, client, resource, approved, signed_in, remembered)


def _consent_page(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
    client: Client,
    resource: RegisteredResource,
    approved: CodeRequest,
    signed_in: SignedIn | None,
    previously_approved: bool,
) -> Response:
    binding, new_binding = runtime.cookies.browser_binding(request)
    request_id = create_request(
        session,
        client_id=client.client_id,
        redirect_uri=approved.redirect_uri,
        client_state=approved.client_state,
        code_challenge=approved.code_challenge,
        resource=resource.resource,
        scopes=approved.scopes,
        browser_binding=binding,
        dpop_jkt=approved.dpop_jkt,
    )
    upstream = runtime.upstream.display_name
    cimd_host = shown_host(urlsplit(client.client_id).hostname or "") if client.origin == "cimd" else None
    response = render(
        runtime.templates,
        "consent.html",
        client_name=client.client_name or "An unnamed application",
        client_id=client.client_id,
        client_origin=client.origin,
        client_host=cimd_host,
        redirect=redirect_target(approved.redirect_uri),
        localhost_only=all(is_loopback_redirect(uri) for uri in client.redirect_uris),
        previously_approved=previously_approved,
        resource=resource.resource,
        resource_name=resource.name,
        scopes=[
            {
                "name": scope,
                "description": describe(scope, resource.scope_descriptions),
                "upstream_token": scope == resource.upstream_token_scope,
            }
            for scope in approved.scopes
        ],
        user_login=signed_in.user.login if signed_in else None,
        upstream_name=upstream,
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
        raise invalid_target("one resource per request: tokens have a single audience")
    if not values:
        known = runtime.resources.all()
        if len(known) == 1:  # RFC 8707 §2: the server may pick its default resource
            return known[0]
        raise invalid_target("the resource parameter (RFC 8707) is required")
    try:
        return runtime.resources.find(values[0])
    except UnknownResource as exc:
        raise invalid_target(str(exc)) from None
