"""The grant types the token endpoint serves: each a typed request and the function that answers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.authorization_code import exchange_code
from mcp_auth_server.grants.client_credentials import client_credentials
from mcp_auth_server.grants.refresh_token import refresh
from mcp_auth_server.grants.requests import (
    TOKEN_EXCHANGE,
    AuthorizationCodeRequest,
    ClientCredentialsRequest,
    GrantRequest,
    RefreshTokenRequest,
    TokenExchangeRequest,
)
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.grants.token_exchange import exchange_for_upstream
from mcp_auth_server.runtime import Runtime

R = TypeVar("R", bound=GrantRequest)


@dataclass(frozen=True)
class GrantType(Generic[R]):
    request: type[R]
    handle: Callable[[Runtime, AsyncSession, Client, R], Awaitable[TokenResult]]


GRANT_TYPES: dict[str, GrantType[Any]] = {
    "authorization_code": GrantType(AuthorizationCodeRequest, exchange_code),
    "refresh_token": GrantType(RefreshTokenRequest, refresh),
    "client_credentials": GrantType(ClientCredentialsRequest, client_credentials),
    TOKEN_EXCHANGE: GrantType(TokenExchangeRequest, exchange_for_upstream),
}
