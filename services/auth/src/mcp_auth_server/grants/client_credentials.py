"""The client_credentials grant (RFC 6749 §4.4) for machine clients (CI jobs, other services).

Only clients an operator created with `mcp-auth clients add --machine`, only for the resources
and scopes the operator allowed them; the token's `sub` is the client itself (RFC 9068 §2.2).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.responses import token_response
from mcp_auth_server.oauth.errors import OAuthError, invalid_scope, invalid_target
from mcp_auth_server.oauth.rfc9068_access_tokens import issue_access_token
from mcp_auth_server.oauth.scopes import parse_scope
from mcp_auth_server.runtime import Runtime


async def client_credentials(
    runtime: Runtime, session: AsyncSession, client: Client, form: FormData
) -> Response:
    if client.origin != "machine":
        raise OAuthError("unauthorized_client", "only machine clients may use client_credentials")
    resources = form.getlist("resource")
    if len(resources) != 1:
        raise invalid_target("name exactly one resource (RFC 8707)")
    await runtime.resources.refresh_if_stale(session)
    resource = runtime.resources.lookup(str(resources[0]))
    if resource.resource not in client.allowed_resources:
        raise invalid_target("this client may not obtain tokens for that resource")
    allowed = [scope for scope in client.allowed_scopes if scope in resource.scopes]
    scopes = parse_scope(str(form.get("scope") or "")) or allowed
    if not scopes or not set(scopes) <= set(allowed):
        raise invalid_scope(f"allowed scopes for this client are: {' '.join(allowed) or '(none)'}")
    settings = runtime.settings
    access = issue_access_token(
        runtime.keyring,
        issuer=settings.auth_issuer,
        subject=client.client_id,
        audience=resource.resource,
        client_id=client.client_id,
        scopes=scopes,
        ttl=settings.auth_access_token_ttl,
    )
    # Commits the endpoint's last-use record (store.clients.touch). Rolled back, it would match again
    # on the next request, and every request would queue on the client row's lock.
    await session.commit()
    return token_response(access, scopes)
