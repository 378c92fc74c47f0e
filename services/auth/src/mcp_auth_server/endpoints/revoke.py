"""Token revocation (RFC 7009), POST /revoke, for public and confidential clients alike.

A refresh token ends its grant and whole family; an access token's `jti` is remembered until
it would have expired (introspecting resource servers then see it inactive). A client can only
revoke its own tokens; another client's, or an unknown token, gets the same 200 (§2.2), so
the endpoint reveals nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.db.models import Grant, RefreshToken
from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.forms import read_form
from mcp_auth_server.grants.client_authentication import (
    authenticate_client,
    look_up_client,
    prove_client_assertion,
)
from mcp_auth_server.oauth.errors import NO_STORE, invalid_request
from mcp_auth_server.oauth.rfc6749_client_authentication import presented_client
from mcp_auth_server.oauth.rfc9068_access_tokens import InvalidAccessToken, verify_access_token
from mcp_auth_server.oauth.rfc9449_dpop import bound_key
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.revocation import revoke_access_token, revoke_grants

router = APIRouter()


@router.post("/revoke", summary="Token revocation (RFC 7009)")
async def revoke(request: Request, runtime: RuntimeDep) -> Response:
    # Refused requests spend the sender's address's budget (web/rate_limits.py): no unlimited guessing.
    async with runtime.rate_limits.refusals_counted(runtime.rate_limits.revoke, request):
        return await _revoke(request, runtime)


async def _revoke(request: Request, runtime: Runtime) -> Response:
    form = await read_form(request)
    presented = presented_client(request.headers.get("authorization"), form.params)
    token = form.params.get("token", "")
    assertion = await prove_client_assertion(runtime, presented)  # before the transaction (see there)
    lookup = await look_up_client(runtime, presented, assertion)
    await runtime.rate_limits.check_new_client(lookup.new, request)
    async with transaction(runtime) as session:
        client = await authenticate_client(runtime, session, presented, lookup, assertion)
        if not token:
            raise invalid_request("token is required")
        refresh = await session.get(RefreshToken, hash_secret(token))
        if refresh is not None:
            grant = await session.get(Grant, refresh.grant_id)
            if grant is not None and grant.client_id == client.client_id:
                await revoke_grants(session, "revoked_by_client", grant_id=grant.id)
                audit.record(
                    session,
                    "grant_revoked",
                    user_id=grant.user_id,
                    client_id=client.client_id,
                    grant_id=grant.id,
                    by="client",
                    **audit.key_binding(grant.dpop_jkt),
                )
            return Response(status_code=200, headers=NO_STORE)
        try:
            claims = verify_access_token(runtime.keyring.public_keys, token, runtime.settings.auth_issuer)
        except InvalidAccessToken:
            claims = None
        if claims is not None and claims.get("client_id") == client.client_id:
            await revoke_access_token(session, str(claims["jti"]), int(claims["exp"]))
            audit.record(
                session,
                "access_token_revoked",
                user_id=str(claims["sub"]),
                client_id=client.client_id,
                **audit.key_binding(bound_key(claims)),
            )
    return Response(status_code=200, headers=NO_STORE)
