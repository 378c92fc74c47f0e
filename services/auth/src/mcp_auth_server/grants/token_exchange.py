"""Token exchange (RFC 8693) of a user's access token for their upstream token.

The MCP server never forwards a client's token upstream. Instead, authenticated as its own
confidential client, it presents the user's token (whose `aud` must be that very server) and
receives the user's upstream (GitHub, Google, OIDC) token, renewed first when it is about to
expire. The upstream token is a credential like any other: the subject token must still be good
(its grant alive, the user admitted), and the resource's upstream-token scope (`upstream_token_scope`
in AUTH_RESOURCES) must be in the token and in the user's consent. Every exchange is audited. A subject
token bound to a DPoP key (RFC 9449) needs no proof here: the resource server authenticates as itself,
and an upstream token cannot be bound to the client's key, so the answer is a bearer token.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client, UpstreamIdentity
from mcp_auth_server.grants.requests import TokenExchangeRequest
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.grants.upstream_refresh import fresh_upstream_tokens
from mcp_auth_server.oauth.errors import (
    invalid_grant,
    invalid_request,
    invalid_target,
    temporarily_unavailable,
    unauthorized_client,
)
from mcp_auth_server.oauth.rfc9068_access_tokens import InvalidAccessToken, audiences, verify_access_token
from mcp_auth_server.oauth.rfc9449_dpop import bound_key
from mcp_auth_server.policy.access_tokens import check_still_good
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store import audit
from mcp_auth_server.store.users import identity_of
from mcp_auth_server.upstreams.base import UpstreamRejected, UpstreamTokens, UpstreamUnavailable

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


async def exchange_for_upstream(
    runtime: Runtime, session: AsyncSession, client: Client, request: TokenExchangeRequest
) -> TokenResult:
    if client.served_resource is None:
        raise unauthorized_client("only resource-server clients may exchange tokens")
    if request.subject_token_type != ACCESS_TOKEN_TYPE:
        raise invalid_request(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    if request.requested_token_type not in (None, ACCESS_TOKEN_TYPE):
        raise invalid_request(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
    upstream = runtime.upstream.name
    audience = request.audience or upstream
    if audience != upstream:
        raise invalid_target(f"tokens can be exchanged only for the {upstream} upstream")
    settings = runtime.settings
    try:
        claims = verify_access_token(runtime.keyring.public_keys, request.subject_token, settings.auth_issuer)
    except InvalidAccessToken as exc:
        raise invalid_grant(f"subject_token is not a valid access token: {exc}") from None
    # Before anything else is asked: a server learns nothing about tokens meant for others.
    if client.served_resource not in audiences(claims):
        raise invalid_grant("subject_token was not issued for this resource server")
    try:
        await check_still_good(
            session,
            request_policy(runtime, session),
            claims,
            Path.TOKEN_EXCHANGE,
            upstream,
            runtime.trusted_issuers,
        )
    except CredentialRefused as refused:
        raise invalid_grant(
            f"subject_token may not be exchanged: {refused}", persist=refused.persist
        ) from None
    user_id = str(claims["sub"])
    tokens = await _usable_upstream_tokens(runtime, session, await identity_of(session, user_id, upstream))
    audit.record(
        session,
        "token_exchange",
        user_id=user_id,
        client_id=client.client_id,
        audience=audience,
        jti=claims["jti"],
        **audit.key_binding(bound_key(claims)),
    )
    expires_in = None if tokens.expires_at is None else max(0, tokens.expires_at - now())
    return TokenResult(tokens.access_token, expires_in, issued_token_type=ACCESS_TOKEN_TYPE)


async def _usable_upstream_tokens(
    runtime: Runtime, session: AsyncSession, linked: UpstreamIdentity | None
) -> UpstreamTokens:
    """The upstream tokens, renewed first when about to expire: a tool never gets a dying token."""
    name = runtime.upstream.name
    try:
        tokens = await fresh_upstream_tokens(runtime, session, linked) if linked else None
    except UpstreamRejected as exc:
        raise invalid_grant(f"the {name} grant is no longer valid, sign in again: {exc}") from None
    except UpstreamUnavailable as exc:
        raise temporarily_unavailable(f"{name} is unavailable: {exc}") from None
    if tokens is None:
        raise invalid_grant(f"no {name} token is stored for this user")
    if tokens.expires_at is not None and tokens.expires_at <= now():
        raise invalid_grant(f"the stored {name} token has expired and cannot be renewed")
    return tokens
