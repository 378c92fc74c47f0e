"""Token exchange (RFC 8693) of a user's access token for their upstream token.

The MCP server never forwards a client's token upstream. Instead, authenticated as its own
confidential client, it presents the user's token (whose `aud` must be that very server) and
receives the user's upstream (GitHub, Google, OIDC) token, renewed first with the stored refresh
token when it is about to expire. Only resource-server clients may do this, and only for tokens
issued to them; every exchange is audited.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client, RevokedAccessToken, UpstreamIdentity
from mcp_auth_server.grants.upstream_refresh import fresh_upstream_tokens
from mcp_auth_server.oauth.errors import NO_STORE, OAuthError, invalid_request, invalid_target
from mcp_auth_server.oauth.rfc9068_access_tokens import InvalidAccessToken, verify_access_token
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.users import identity_of
from mcp_auth_server.upstreams.base import UpstreamRejected, UpstreamTokens, UpstreamUnavailable

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


async def exchange_for_upstream(
    runtime: Runtime, session: AsyncSession, client: Client, form: FormData
) -> Response:
    if client.served_resource is None:
        raise OAuthError("unauthorized_client", "only resource-server clients may exchange tokens")
    if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
        raise invalid_request(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    requested = form.get("requested_token_type")
    if requested not in (None, ACCESS_TOKEN_TYPE):
        raise invalid_request(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
    audience = str(form.get("audience") or runtime.upstream.name)
    if audience != runtime.upstream.name:
        raise invalid_target(f"tokens can be exchanged only for the {runtime.upstream.name} upstream")
    try:
        claims = verify_access_token(
            runtime.keyring, str(form.get("subject_token") or ""), runtime.settings.auth_issuer
        )
    except InvalidAccessToken as exc:
        raise OAuthError("invalid_grant", f"subject_token is not a valid access token: {exc}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if client.served_resource not in audiences:
        raise OAuthError("invalid_grant", "subject_token was not issued for this resource server")
    if await session.scalar(select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == claims["jti"])):
        raise OAuthError("invalid_grant", "subject_token has been revoked")
    linked = await identity_of(session, str(claims["sub"]), runtime.upstream.name)
    tokens = await _usable_upstream_tokens(runtime, session, linked)
    audit.record(
        session,
        "token_exchange",
        user_id=str(claims["sub"]),
        client_id=client.client_id,
        audience=audience,
        jti=claims["jti"],
    )
    await session.commit()
    body: dict[str, object] = {
        "access_token": tokens.access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
    }
    if tokens.expires_at is not None:
        body["expires_in"] = max(0, tokens.expires_at - now())
    return JSONResponse(body, headers=NO_STORE)


async def _usable_upstream_tokens(
    runtime: Runtime, session: AsyncSession, linked: UpstreamIdentity | None
) -> UpstreamTokens:
    """The upstream tokens, renewed first when about to expire: a tool never gets a dying token."""
    name = runtime.upstream.name
    try:
        tokens = await fresh_upstream_tokens(runtime, session, linked) if linked else None
    except UpstreamRejected as exc:
        raise OAuthError(
            "invalid_grant", f"the {name} grant is no longer valid, sign in again: {exc}"
        ) from None
    except UpstreamUnavailable as exc:
        raise OAuthError(
            "temporarily_unavailable", f"{name} is unavailable: {exc}", 503, {"Retry-After": "5"}
        ) from None
    if tokens is None:
        raise OAuthError("invalid_grant", f"no {name} token is stored for this user")
    if tokens.expires_at is not None and tokens.expires_at <= now():
        raise OAuthError("invalid_grant", f"the stored {name} token has expired and cannot be renewed")
    return tokens
