"""The grant types the token endpoint serves: each a typed request and the function that answers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.authorization_code import exchange_code
from mcp_auth_server.grants.client_credentials import client_credentials
from mcp_auth_server.grants.jwt_bearer import jwt_bearer, prepare_jwt_bearer
from mcp_auth_server.grants.refresh_token import refresh
from mcp_auth_server.grants.requests import (
    TOKEN_EXCHANGE,
    AuthorizationCodeRequest,
    ClientCredentialsRequest,
    GrantRequest,
    JwtBearerRequest,
    RefreshTokenRequest,
    TokenExchangeRequest,
)
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.grants.token_exchange import exchange_for_upstream
from mcp_auth_server.oauth.rfc7523_jwt_bearer import JWT_BEARER
from mcp_auth_server.runtime import Runtime

R = TypeVar("R", bound=GrantRequest)


@dataclass(frozen=True)
class GrantType(Generic[R]):
    request: type[R]
    handle: Callable[[Runtime, AsyncSession, Client, R], Awaitable[TokenResult]]
    # Work done before the request's transaction (network fetches, the replay cache's own connection).
    prepare: Callable[[Runtime, R], Awaitable[None]] | None = None
    # Answers requests that present no client at all (a workload token is the caller's only credential).
    without_client: Callable[[Runtime, AsyncSession, None, R], Awaitable[TokenResult]] | None = None


GRANT_TYPES: dict[str, GrantType[Any]] = {
    "authorization_code": GrantType(AuthorizationCodeRequest, exchange_code),
    "refresh_token": GrantType(RefreshTokenRequest, refresh),
    "client_credentials": GrantType(ClientCredentialsRequest, client_credentials),
    TOKEN_EXCHANGE: GrantType(TokenExchangeRequest, exchange_for_upstream),
    JWT_BEARER: GrantType(
        JwtBearerRequest, jwt_bearer, prepare=prepare_jwt_bearer, without_client=jwt_bearer
    ),
}
