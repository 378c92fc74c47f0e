"""`require_token(scopes)`: the kit's token check as a FastAPI dependency, for routes outside MCP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import HTTPException, Request
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcp_auth_kit.availability import RETRY_AFTER, UNAVAILABLE, VerificationUnavailable
from mcp_auth_kit.rfc6750_challenges import validate_scopes
from mcp_auth_kit.rfc9449_dpop_resource import (
    DPoPResource,
    Refusal,
    Refused,
    authenticate,
    path_as_sent,
    refusal,
    www_authenticate_for,
)

STATE_ATTRIBUTE = "mcp_auth_kit"


@dataclass(frozen=True)
class ResourceAuth:
    """What `require_token` needs; `protect()` stores one as `app.state.mcp_auth_kit`."""

    verifier: TokenVerifier
    resource_metadata: str
    dpop: DPoPResource | None = None  # RFC 9449 policy; None: bearer tokens only


def require_token(
    scopes: Sequence[str] = (), *, settings: ResourceAuth | None = None
) -> Callable[[Request], Awaitable[AccessToken]]:
    """A dependency yielding the request's verified `AccessToken`, or answering 401/403 with a challenge.

    `settings` defaults to the ones `protect()` put on the app.
    """
    required = validate_scopes(scopes)

    async def dependency(request: Request) -> AccessToken:
        resolved = settings or getattr(request.app.state, STATE_ATTRIBUTE)
        user = request.scope.get("user")
        scheme = None
        if isinstance(user, AuthenticatedUser):
            access_token = user.access_token  # already checked by the guard in front of this route
        else:
            try:
                access_token, presented = await authenticate(
                    headers=request.headers,
                    method=request.method,
                    path=path_as_sent(request.scope),
                    verifier=resolved.verifier,
                    dpop=resolved.dpop,
                )
            except Refused as refused:
                raise _challenge(resolved, required, refused.refusal) from None
            except VerificationUnavailable:
                raise HTTPException(503, detail=UNAVAILABLE, headers={"Retry-After": RETRY_AFTER}) from None
            scheme = presented.scheme
        if not set(access_token.scopes).issuperset(required):
            # RFC 6750 §3.1
            raise _challenge(resolved, required, refusal(resolved.dpop, "insufficient_scope", scheme))
        return access_token

    return dependency


def _challenge(settings: ResourceAuth, scopes: list[str], refused: Refusal) -> HTTPException:
    header = www_authenticate_for(
        refused, settings.dpop, resource_metadata=settings.resource_metadata, scopes=scopes
    )
    nonce = {"DPoP-Nonce": refused.nonce} if refused.nonce else {}
    return HTTPException(
        refused.status, detail=refused.describe, headers={"WWW-Authenticate": header, **nonce}
    )
