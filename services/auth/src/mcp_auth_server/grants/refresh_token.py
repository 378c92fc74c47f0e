"""The refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3) with rotation and reuse detection.

Scope may only narrow (§6); `resource` may not change (RFC 8707 §2.2). Before new tokens are
issued, the upstream is asked again (at most every AUTH_UPSTREAM_RECHECK_SECONDS) whether the
user may still use the service: someone removed from the allowed org loses access here.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client, UpstreamIdentity
from mcp_auth_server.grants.responses import token_response
from mcp_auth_server.grants.upstream_refresh import fresh_upstream_tokens
from mcp_auth_server.oauth.errors import (
    OAuthError,
    invalid_grant,
    invalid_request,
    invalid_scope,
    invalid_target,
)
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource
from mcp_auth_server.oauth.rfc9068_access_tokens import issue_access_token
from mcp_auth_server.oauth.scopes import parse_scope
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.grants import FamilyGrant, FamilyUser, RefreshRefused, revoke_grant, rotate
from mcp_auth_server.store.users import public_profile
from mcp_auth_server.upstreams.base import AccessDenied, Identity, UpstreamRejected, UpstreamUnavailable


async def refresh(runtime: Runtime, session: AsyncSession, client: Client, form: FormData) -> Response:
    presented = str(form.get("refresh_token") or "")
    if not presented:
        raise invalid_request("refresh_token is required")
    settings = runtime.settings
    try:
        rotation = await rotate(
            session, presented, client.client_id, settings.auth_refresh_grace_seconds, runtime.upstream.name
        )
    except RefreshRefused as exc:
        if exc.reuse:
            await session.commit()  # the family's revocation must stick even though this request fails
        raise invalid_grant(str(exc)) from None
    grant = rotation.grant
    _check_resource(runtime, form, grant)
    scopes = parse_scope(str(form.get("scope") or "")) or rotation.scopes
    if not set(scopes) <= set(rotation.scopes):
        raise invalid_scope("a refresh can only narrow the granted scopes")
    user = rotation.user
    if user is None:
        raise invalid_grant("the user of this grant no longer exists")
    await _user_still_admitted(runtime, session, grant, user)
    access = issue_access_token(
        runtime.keyring,
        issuer=settings.auth_issuer,
        subject=user.id,
        audience=grant.resource,
        client_id=client.client_id,
        scopes=scopes,
        ttl=settings.auth_access_token_ttl,
        auth_time=grant.auth_time,
        profile=public_profile(user.profile),
    )
    await session.commit()
    return token_response(access, scopes, rotation.refresh_token)


def _check_resource(runtime: Runtime, form: FormData, grant: FamilyGrant) -> None:
    for value in form.getlist("resource"):
        try:
            if runtime.resources.audience(str(value)) != grant.resource:  # an alias (/sse) names it too
                raise invalid_target("resource differs from the one this grant is for")
        except InvalidResource as exc:
            raise invalid_target(str(exc)) from None


async def _user_still_admitted(
    runtime: Runtime, session: AsyncSession, grant: FamilyGrant, user: FamilyUser
) -> None:
    if user.identity_id is None:
        return  # signed in through another upstream than the one now configured
    if user.checked_at and now() - user.checked_at < runtime.settings.auth_upstream_recheck_seconds:
        return
    linked = await session.get(UpstreamIdentity, user.identity_id)
    if linked is None:
        return
    try:
        identity = Identity(
            provider=linked.provider,
            subject=linked.subject,
            login=user.profile["login"],
            tokens=await fresh_upstream_tokens(runtime, session, linked),
        )
        await runtime.upstream.check_access(identity)
    except (AccessDenied, UpstreamRejected) as exc:
        # Read before the rollback, which expires every loaded row (a lazy reload is not
        # possible under asyncio and was a 500 here).
        grant_id, user_id, client_id = grant.id, user.id, grant.client_id
        await session.rollback()  # undo the rotation: nothing issued from this request survives
        await revoke_grant(session, grant_id, "upstream_access_lost")
        audit.record(session, "upstream_access_lost", user_id=user_id, client_id=client_id, reason=str(exc))
        await session.commit()
        raise invalid_grant(f"access was withdrawn upstream: {exc}") from None
    except UpstreamUnavailable as exc:
        raise OAuthError(
            "temporarily_unavailable",
            f"the identity provider is unavailable: {exc}",
            503,
            {"Retry-After": "5"},
        ) from None
    linked.checked_at = now()
