"""The refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3) with rotation and reuse detection.

Presenting a rotated token again means it leaked or the family is confused: the whole family and
its grant are revoked (RFC 9700 §4.14.2) — except the immediately previous token within
AUTH_REFRESH_GRACE_SECONDS, which yields fresh tokens once, so a client that lost a response (or
refreshes from two egress addresses at once) is not logged out. Scope may only narrow (§6);
`resource` may not change (RFC 8707 §2.2). The credential policy decides before anything is written:
a user no longer admitted upstream is deprovisioned here, and the refusal sticks. With a DPoP proof the
new tokens are bound to its key; a public client's refresh token needs a proof by the key it was issued
for, and none if it was issued without one (RFC 9449 §5), checked before reuse detection, so a stolen
bound token cannot even burn the family.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.client_authentication import require_client_allowed
from mcp_auth_server.grants.requests import RefreshTokenRequest
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.oauth.errors import invalid_grant, invalid_scope, invalid_target
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource
from mcp_auth_server.oauth.rfc9068_access_tokens import issue_access_token
from mcp_auth_server.oauth.rfc9449_dpop import refresh_key_mismatch, refresh_key_mismatch_error, require_proof
from mcp_auth_server.oauth.scopes import parse_scope
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.clients import is_public
from mcp_auth_server.store.grants import Family, advance_family, read_family
from mcp_auth_server.store.revocation import revoke_grants
from mcp_auth_server.store.standings import client_standing
from mcp_auth_server.store.users import public_profile


async def refresh(
    runtime: Runtime, session: AsyncSession, client: Client, request: RefreshTokenRequest
) -> TokenResult:
    require_client_allowed(Path.REFRESH, client, for_user=True)
    settings = runtime.settings
    family = await read_family(session, request.refresh_token, runtime.upstream.name)
    if family is None:
        raise invalid_grant("unknown refresh token")
    if family.client_id != client.client_id:
        raise invalid_grant("the refresh token was issued to another client")
    if refresh_key_mismatch(family.dpop_jkt, request.dpop_jkt, public_client=is_public(client)):
        audit.record(
            session,
            "refresh_token_key_mismatch",
            user_id=family.user.id if family.user else None,
            client_id=client.client_id,
            grant_id=family.grant_id,
            proof_dpop_jkt=request.dpop_jkt,
            **audit.key_binding(family.dpop_jkt),
        )
        raise refresh_key_mismatch_error(family.dpop_jkt)
    _check_resource(runtime, request.resource, family)
    require_proof(family.resource, runtime.resources.dpop_required(family.resource), request.dpop)
    scopes = parse_scope(request.scope) or family.scopes
    if not set(scopes) <= set(family.scopes):
        raise invalid_scope("a refresh can only narrow the granted scopes")
    question = Question(
        Path.REFRESH,
        client_standing(client),
        family.resource,
        scopes,
        user=family.user,
        grant=family.grant,
        consent=family.consent,
    )
    try:
        await request_policy(runtime, session).decide(question)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
    settle = family.settlement(now(), settings.auth_refresh_grace_seconds)
    if settle is None:
        await revoke_grants(session, "refresh_token_reuse", grant_id=family.grant_id)
        audit.record(
            session,
            "refresh_token_reuse",
            user_id=family.user.id if family.user else None,
            client_id=client.client_id,
            grant_id=family.grant_id,
            generation=family.generation,
            newest_generation=family.newest,
            **audit.key_binding(family.dpop_jkt),
        )
        raise invalid_grant("the refresh token was already used; the grant is revoked", persist=True)
    refresh_token = await advance_family(session, family, settle, request.dpop_jkt)
    assert family.user is not None  # the policy refuses a refresh without a user
    access = issue_access_token(
        runtime.keyring.signer(),
        issuer=settings.auth_issuer,
        subject=family.user.id,
        audience=family.resource,
        client_id=client.client_id,
        scopes=scopes,
        ttl=settings.auth_access_token_ttl,
        grant_id=family.grant_id,
        auth_time=family.auth_time,
        profile=public_profile(family.profile),
        dpop_jkt=request.dpop_jkt,
    )
    return TokenResult.of(access, scopes, refresh_token)


def _check_resource(runtime: Runtime, values: list[str], family: Family) -> None:
    for value in values:
        try:
            if runtime.resources.audience(value) != family.resource:  # an alias (/sse) names it too
                raise invalid_target("resource differs from the one this grant is for")
        except InvalidResource as exc:
            raise invalid_target(str(exc)) from None
