"""Steps shared by /authorize, /consent and /callback: who is signed in, and answering with a code."""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuthorizationRequest, User
from mcp_auth_server.oauth.rfc9207_issuer_identification import authorization_response_url
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit, consents
from mcp_auth_server.store.authorization_codes import issue_code
from mcp_auth_server.store.browser_sessions import live_session
from mcp_auth_server.store.users import identity_of
from mcp_auth_server.upstreams.base import UpstreamUnavailable
from mcp_auth_server.web.cookies import SESSION
from mcp_auth_server.web.pages import error_page

log = logging.getLogger(__name__)


async def user_of_session(runtime: Runtime, session: AsyncSession, request: Request) -> User | None:
    """The signed-in user, unless the upstream can no longer vouch for them.

    A session outlives the upstream token it was made with; when that token has expired and
    there is no refresh token to renew it, the user signs in upstream again, or every grant
    issued from the session would fail its upstream re-check at the first refresh.
    """
    browser_session = await live_session(session, runtime.cookies.read(request, SESSION))
    if browser_session is None:
        return None
    linked = await identity_of(session, browser_session.user_id, runtime.upstream.name)
    if (
        linked is not None
        and linked.refresh_token_encrypted is None
        and (linked.access_token_expires_at is not None and linked.access_token_expires_at <= now())
    ):
        return None
    return await session.get(User, browser_session.user_id)


async def issue_code_redirect(
    runtime: Runtime,
    session: AsyncSession,
    *,
    client_id: str,
    user: User,
    redirect_uri: str,
    code_challenge: str,
    resource: str,
    scopes: list[str],
    client_state: str | None,
    status_code: int,
) -> RedirectResponse:
    """Remember the consent, issue a code and send it to the client with `state` and `iss`."""
    await consents.remember(session, user.id, client_id, resource, scopes)
    code = issue_code(
        session,
        client_id=client_id,
        user_id=user.id,
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        resource=resource,
        scopes=scopes,
        auth_time=user.last_login_at or now(),
        ttl=runtime.settings.auth_code_ttl,
    )
    audit.record(
        session,
        "authorization_code_issued",
        user_id=user.id,
        client_id=client_id,
        resource=resource,
        scopes=scopes,
    )
    url = authorization_response_url(
        redirect_uri, runtime.settings.auth_issuer, {"code": code, "state": client_state}
    )
    return RedirectResponse(url, status_code=status_code)


async def answer_with_code(
    runtime: Runtime, session: AsyncSession, row: AuthorizationRequest, user: User
) -> RedirectResponse:
    """Answer an approved authorization request in flight (after a form POST: 303)."""
    return await issue_code_redirect(
        runtime,
        session,
        client_id=row.client_id,
        user=user,
        redirect_uri=row.redirect_uri,
        code_challenge=row.code_challenge,
        resource=row.resource,
        scopes=row.scopes,
        client_state=row.client_state,
        status_code=303,
    )


def error_redirect_url(
    runtime: Runtime, redirect_uri: str, client_state: str | None, error: str, description: str
) -> str:
    return authorization_response_url(
        redirect_uri,
        runtime.settings.auth_issuer,
        {"error": error, "error_description": description, "state": client_state},
    )


def upstream_unavailable_page(
    runtime: Runtime, redirect_uri: str, client_state: str | None, exc: UpstreamUnavailable
) -> HTMLResponse:
    """The provider is down: a 503 page for the person, `temporarily_unavailable` for the client."""
    log.warning("upstream unavailable during sign-in: %s", exc)
    return error_page(
        runtime.templates,
        503,
        f"{runtime.upstream.display_name} is unavailable",
        f"{exc}. Please try again in a moment.",
        error_redirect_url(
            runtime,
            redirect_uri,
            client_state,
            "temporarily_unavailable",
            "the identity provider is unavailable",
        ),
    )
