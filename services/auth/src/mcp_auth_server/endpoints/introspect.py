"""Token introspection (RFC 7662), POST /introspect, for resource servers only.

Callers authenticate as a resource-server client (`mcp-auth clients add --resource-server`)
and learn about a token only if its `aud` is their own resource (§4: a server must not learn
about tokens meant for others). Anything else — revoked, expired, foreign, unknown, or a user's
token whose grant was revoked (on the connected-applications page, or through its refresh token)
— is `{"active": false}` and nothing more.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Grant, RevokedAccessToken
from mcp_auth_server.endpoints.dependencies import RuntimeDep, SessionDep
from mcp_auth_server.endpoints.token import read_form
from mcp_auth_server.oauth.errors import NO_STORE, OAuthError, invalid_request
from mcp_auth_server.oauth.rfc6749_client_authentication import authenticate_client
from mcp_auth_server.oauth.rfc9068_access_tokens import InvalidAccessToken, verify_access_token

router = APIRouter()
INACTIVE = {"active": False}
REPORTED_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "jti",
    "auth_time",
    "preferred_username",
    "name",
    "email",
    "picture",
)


@router.post("/introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request, runtime: RuntimeDep, session: SessionDep) -> JSONResponse:
    form = await read_form(request)
    client = await authenticate_client(runtime.clients, session, request, form)
    if client.served_resource is None:
        raise OAuthError("unauthorized_client", "only resource-server clients may introspect tokens", 403)
    token = str(form.get("token") or "")
    if not token:
        raise invalid_request("token is required")
    try:
        claims = verify_access_token(runtime.keyring, token, runtime.settings.auth_issuer)
    except InvalidAccessToken:
        return JSONResponse(INACTIVE, headers=NO_STORE)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    revoked = await session.scalar(
        select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == claims["jti"])
    )
    if client.served_resource not in audiences or revoked or not await _grant_stands(session, claims):
        return JSONResponse(INACTIVE, headers=NO_STORE)
    body = {"active": True, "token_type": "Bearer", **{k: claims[k] for k in REPORTED_CLAIMS if k in claims}}
    if "preferred_username" in claims:
        body["username"] = claims["preferred_username"]
    return JSONResponse(body, headers=NO_STORE)


async def _grant_stands(session: AsyncSession, claims: dict[str, Any]) -> bool:
    """Revoking a grant ends its access tokens here, though as JWTs they stay valid until `exp`.

    A user's token is active while an unrevoked grant of that user to that client, for its audience,
    dates from before the token. Machine clients' tokens (`sub` = the client) have no grant.
    """
    if claims["sub"] == claims["client_id"]:
        return True
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    standing = select(Grant.id).where(
        Grant.user_id == claims["sub"],
        Grant.client_id == claims["client_id"],
        Grant.resource.in_(audience),
        Grant.revoked_at.is_(None),
        Grant.created_at <= claims["iat"],
    )
    return await session.scalar(standing.limit(1)) is not None
