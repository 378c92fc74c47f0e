"""The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).

The code is redeemed atomically (one success under any concurrency), must belong to the
authenticated client, match the redirect URI and the PKCE verifier, and — if the client names
a resource — that resource (RFC 8707 §2.2). A replayed code revokes what it produced (§10.5).
The credential policy is asked again at redemption: a code issued before the user was disabled,
lost access upstream or withdrew consent yields nothing. A code issued for a `dpop_jkt` needs a proof
by that key (RFC 9449 §10); with a proof, the tokens are bound to its key.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuthorizationCode, Client
from mcp_auth_server.db.statements import Sql
from mcp_auth_server.grants.client_authentication import require_client_allowed
from mcp_auth_server.grants.requests import AuthorizationCodeRequest
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.oauth.errors import invalid_grant, invalid_target
from mcp_auth_server.oauth.rfc7636_pkce import verifier_matches
from mcp_auth_server.oauth.rfc8252_redirect_uris import matches_registered
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource
from mcp_auth_server.oauth.rfc9068_access_tokens import issue_access_token, new_jti
from mcp_auth_server.oauth.rfc9449_dpop import check_code_binding, require_proof
from mcp_auth_server.oauth.scopes import OFFLINE_ACCESS
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.authorization_codes import Produced, redeem
from mcp_auth_server.store.grants import NewGrant, add_grant, add_grant_with_refresh_token
from mcp_auth_server.store.revocation import revoke_access_token, revoke_grants
from mcp_auth_server.store.standings import client_standing
from mcp_auth_server.store.users import public_profile


async def exchange_code(
    runtime: Runtime, session: AsyncSession, client: Client, request: AuthorizationCodeRequest
) -> TokenResult:
    require_client_allowed(Path.CODE_REDEMPTION, client, for_user=True)
    settings = runtime.settings
    produced = Produced(
        grant_id=str(uuid.uuid4()),
        access_token_jti=new_jti(),
        access_token_expires_at=now() + settings.auth_access_token_ttl,
    )
    redemption = await redeem(session, request.code, produced, runtime.upstream.name)
    if redemption.replayed is not None:
        await _revoke_what_the_code_produced(session, redemption.replayed, client.client_id)
        raise invalid_grant("the authorization code was already used", persist=True)
    stored = redemption.code
    if stored is None:
        raise invalid_grant("unknown authorization code")
    if stored.client_id != client.client_id:
        raise invalid_grant("the authorization code was issued to another client")
    if stored.expires_at <= now():
        raise invalid_grant("the authorization code has expired")
    if request.redirect_uri != stored.redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if matches_registered(stored.redirect_uri, client.redirect_uris) is None:
        # A metadata document may have changed since /authorize: its redirect URIs are checked again.
        raise invalid_grant("redirect_uri is no longer registered for this client")
    if not verifier_matches(request.code_verifier, stored.code_challenge):
        raise invalid_grant("code_verifier does not match the code_challenge")
    if request.resource:
        try:
            named = [runtime.resources.audience(value) for value in request.resource]  # aliases: /sse
        except InvalidResource as exc:
            raise invalid_target(str(exc)) from None
        if named != [stored.resource]:
            raise invalid_target("resource differs from the one authorized")
    check_code_binding(stored.dpop_jkt, request.dpop)
    require_proof(stored.resource, runtime.resources.dpop_required(stored.resource), request.dpop)
    question = Question(
        Path.CODE_REDEMPTION,
        client_standing(client),
        stored.resource,
        stored.scopes,
        user=stored.user,
        consent=stored.consent,
    )
    try:
        await request_policy(runtime, session).decide(question)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None

    grant = NewGrant(
        grant_id=produced.grant_id,
        user_id=stored.user_id,
        client_id=client.client_id,
        resource=stored.resource,
        scopes=stored.scopes,
        auth_time=stored.auth_time,
        dpop_jkt=request.dpop_jkt,
    )
    sql = await Sql.of(session)
    refresh: str | None = None
    if OFFLINE_ACCESS in stored.scopes:
        ttl = settings.auth_refresh_token_ttl
        grant_id, refresh = await add_grant_with_refresh_token(sql, **grant, lifetime=ttl)
    else:
        grant_id = await add_grant(sql, **grant, lifetime=settings.auth_access_token_ttl)
    access = issue_access_token(
        runtime.keyring.signer(),
        issuer=settings.auth_issuer,
        subject=stored.user_id,
        audience=stored.resource,
        client_id=client.client_id,
        scopes=stored.scopes,
        ttl=settings.auth_access_token_ttl,
        grant_id=grant_id,
        auth_time=stored.auth_time,
        profile=public_profile(stored.profile),
        jti=produced.access_token_jti,
        dpop_jkt=request.dpop_jkt,
    )
    return TokenResult.of(access, stored.scopes, refresh)


async def _revoke_what_the_code_produced(
    session: AsyncSession, code: AuthorizationCode, client_id: str
) -> None:
    audit.record(
        session,
        "code_replay",
        client_id=client_id,
        grant_id=code.grant_id,
        **audit.key_binding(code.dpop_jkt),
    )
    if code.grant_id is not None:
        await revoke_grants(session, "code_replay", grant_id=code.grant_id)
    if code.access_token_jti is not None and code.access_token_expires_at is not None:
        await revoke_access_token(session, code.access_token_jti, code.access_token_expires_at)
