"""Steps shared by /authorize, /consent, /callback and the account pages: who is signed in, and
answering an authorization request with a code."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import User
from mcp_auth_server.oauth.rfc9207_issuer_identification import authorization_response_url
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit, consents
from mcp_auth_server.store.authorization_codes import issue_code
from mcp_auth_server.store.browser_sessions import live_session
from mcp_auth_server.store.standings import UserStanding
from mcp_auth_server.store.users import identity_of, standing_of, upstream_token_dead
from mcp_auth_server.web.cookies import SESSION


@dataclass(frozen=True)
class SignedIn:
    user: User
    standing: UserStanding


async def signed_in_user(
    runtime: Runtime, session: AsyncSession, request: Request, policy: CredentialPolicy
) -> SignedIn | None:
    """The user of this browser's live session, if they are still admitted.

    A user the upstream no longer admits is deprovisioned by the policy (their sessions end with
    everything else) and counts as signed out; the handler's transaction commits that. A session
    also stops counting when the upstream token it was made with has died without a refresh token:
    the person signs in upstream again, or every code from the session would fail its first re-check.
    Raises OAuthError `temporarily_unavailable` when the upstream is due to be asked and cannot be.
    """
    browser_session = await live_session(session, runtime.cookies.read(request, SESSION))
    if browser_session is None:
        return None
    user = await session.get(User, browser_session.user_id)
    if user is None:
        return None
    linked = await identity_of(session, user.id, runtime.upstream.name)
    if linked is not None and upstream_token_dead(linked):
        return None
    standing = standing_of(user, linked)
    try:
        await policy.admit(standing)
    except CredentialRefused:
        return None
    return SignedIn(user, standing)


@dataclass(frozen=True)
class CodeRequest:
    """An approved authorization request, to be answered with a code (RFC 6749 §4.1.2)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scopes: list[str]
    client_state: str | None
    dpop_jkt: str | None = None  # RFC 9449 §10: the key the code can be redeemed with, if named


async def issue_code_redirect(
    runtime: Runtime, session: AsyncSession, user: User, approved: CodeRequest, status_code: int
) -> RedirectResponse:
    """Remember the consent, issue a code and send it to the client with `state` and `iss`."""
    settings = runtime.settings
    await consents.remember(
        session,
        user.id,
        approved.client_id,
        approved.resource,
        approved.scopes,
        settings.auth_refresh_token_ttl,
    )
    code = issue_code(
        session,
        client_id=approved.client_id,
        user_id=user.id,
        redirect_uri=approved.redirect_uri,
        code_challenge=approved.code_challenge,
        resource=approved.resource,
        scopes=approved.scopes,
        auth_time=user.last_login_at or now(),
        ttl=settings.auth_code_ttl,
        dpop_jkt=approved.dpop_jkt,
    )
    audit.record(
        session,
        "authorization_code_issued",
        user_id=user.id,
        client_id=approved.client_id,
        resource=approved.resource,
        scopes=approved.scopes,
        **audit.key_binding(approved.dpop_jkt),
    )
    url = authorization_response_url(
        approved.redirect_uri, settings.auth_issuer, {"code": code, "state": approved.client_state}
    )
    return RedirectResponse(url, status_code=status_code)


def error_redirect(
    runtime: Runtime,
    redirect_uri: str,
    client_state: str | None,
    error: str,
    description: str,
    status_code: int,
) -> RedirectResponse:
    """An error back to a verified client (RFC 6749 §4.1.2.1), with `state` and `iss` (RFC 9207 §2)."""
    return RedirectResponse(
        error_response_url(runtime, redirect_uri, client_state, error, description), status_code=status_code
    )


def error_response_url(
    runtime: Runtime, redirect_uri: str, client_state: str | None, error: str, description: str
) -> str:
    """The client's redirect URI carrying an error response (RFC 6749 §4.1.2.1, RFC 9207 §2)."""
    return authorization_response_url(
        redirect_uri,
        runtime.settings.auth_issuer,
        {"error": error, "error_description": description, "state": client_state},
    )
