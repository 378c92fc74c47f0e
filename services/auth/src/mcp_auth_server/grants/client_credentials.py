"""The client_credentials grant (RFC 6749 §4.4) for machine clients (CI jobs, other services).

Only clients an operator created with `mcp-auth clients add --machine`, only for the resources
and scopes the operator allowed them (the credential policy says so); the token's `sub` is the
client itself (RFC 9068 §2.2).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.client_authentication import require_client_allowed
from mcp_auth_server.grants.requests import ClientCredentialsRequest
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.oauth.errors import invalid_target
from mcp_auth_server.oauth.rfc9068_access_tokens import issue_access_token
from mcp_auth_server.oauth.rfc9449_dpop import require_proof
from mcp_auth_server.oauth.scopes import parse_scope
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.resources import UnknownResource
from mcp_auth_server.store.standings import client_standing


async def client_credentials(
    runtime: Runtime, session: AsyncSession, client: Client, request: ClientCredentialsRequest
) -> TokenResult:
    require_client_allowed(Path.CLIENT_CREDENTIALS, client, for_user=False)
    if len(request.resource) != 1:
        raise invalid_target("name exactly one resource (RFC 8707)")
    await runtime.resources.refresh_if_stale(session)
    try:
        resource = runtime.resources.find(request.resource[0])
    except UnknownResource as exc:
        raise invalid_target(str(exc)) from None
    allowed = [scope for scope in client.allowed_scopes if scope in resource.scopes]
    scopes = parse_scope(request.scope) or allowed
    question = Question(Path.CLIENT_CREDENTIALS, client_standing(client), resource.resource, scopes)
    try:
        await request_policy(runtime, session).decide(question)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
    require_proof(resource.resource, resource.dpop_required, request.dpop)
    settings = runtime.settings
    access = issue_access_token(
        runtime.keyring.signer(),
        issuer=settings.auth_issuer,
        subject=client.client_id,
        audience=resource.resource,
        client_id=client.client_id,
        scopes=scopes,
        ttl=settings.auth_access_token_ttl,
        dpop_jkt=request.dpop_jkt,
    )
    return TokenResult.of(access, scopes)
