"""`require_token(scopes)`: the kit's bearer-token check as a FastAPI dependency, for routes outside MCP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import HTTPException, Request
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcp_auth_kit.availability import RETRY_AFTER, UNAVAILABLE, VerificationUnavailable
from mcp_auth_kit.rfc6750_challenges import (
    ErrorCode,
    MultipleTokens,
    bearer_token,
    description,
    status_code,
    validate_scopes,
    www_authenticate,
)

STATE_ATTRIBUTE = "mcp_auth_kit"


@dataclass(frozen=True)
class ResourceAuth:
    """What `require_token` needs; `protect()` stores one as `app.state.mcp_auth_kit`."""

    verifier: TokenVerifier
    resource_metadata: str


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
        if isinstance(user, AuthenticatedUser):
            access_token = user.access_token  # already checked by the guard in front of this route
        else:
            try:
                token = bearer_token(request.headers)
            except MultipleTokens:
                raise _challenge(resolved, required, "invalid_request") from None
            if token is None:
                raise _challenge(resolved, required, None)  # RFC 6750 §3.1: no error without a token
            try:
                verified = await resolved.verifier.verify_token(token)
            except VerificationUnavailable:
                raise HTTPException(503, detail=UNAVAILABLE, headers={"Retry-After": RETRY_AFTER}) from None
            if verified is None:
                raise _challenge(resolved, required, "invalid_token")
            access_token = verified
        if not set(access_token.scopes).issuperset(required):
            raise _challenge(resolved, required, "insufficient_scope")  # RFC 6750 §3.1
        return access_token

    return dependency


def _challenge(settings: ResourceAuth, scopes: list[str], error: ErrorCode | None) -> HTTPException:
    header = www_authenticate(resource_metadata=settings.resource_metadata, scopes=scopes, error=error)
    return HTTPException(status_code(error), detail=description(error), headers={"WWW-Authenticate": header})
