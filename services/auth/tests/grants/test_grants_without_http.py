"""Each grant called directly on a typed request, on SQLite: what it issues and where the policy stops it."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy import update

from mcp_auth_server.db.models import User
from mcp_auth_server.grants.authorization_code import exchange_code
from mcp_auth_server.grants.client_credentials import client_credentials
from mcp_auth_server.grants.refresh_token import refresh
from mcp_auth_server.grants.requests import (
    AuthorizationCodeRequest,
    ClientCredentialsRequest,
    RefreshTokenRequest,
)
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.clients import create_client
from mcp_auth_server.store.revocation import forget_consent

from ..conftest import RESOURCE_A, RESOURCE_B
from ..flow import CLAUDE_CALLBACK
from .conftest import Approved, approve

OFFLINE = ["mcp:tools", "offline_access"]


def code_request(approved: Approved) -> AuthorizationCodeRequest:
    return AuthorizationCodeRequest(
        grant_type="authorization_code",
        code=approved.code,
        code_verifier=approved.verifier,
        redirect_uri=CLAUDE_CALLBACK,
    )


async def redeemed(runtime: Runtime, approved: Approved) -> TokenResult:
    async with runtime.sessions() as session:
        result = await exchange_code(runtime, session, approved.client, code_request(approved))
        await session.commit()
    return result


async def test_a_code_becomes_tokens_that_name_their_grant(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        approved = await approve(runtime, session, "ann", OFFLINE)
    result = await redeemed(runtime, approved)
    claims = jwt.decode(result.access_token, options={"verify_signature": False})
    assert (claims["aud"], claims["client_id"], claims["sub"]) == (
        RESOURCE_A,
        approved.client.client_id,
        approved.user.id,
    )
    assert claims["grant_id"]
    assert result.refresh_token is not None
    assert result.body()["token_type"] == "Bearer"


async def test_a_code_whose_consent_was_withdrawn_yields_nothing(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        approved = await approve(runtime, session, "ben", OFFLINE)
        await forget_consent(session, approved.user.id)
        await session.commit()
    with pytest.raises(OAuthError) as refused:
        await redeemed(runtime, approved)
    assert refused.value.error == "invalid_grant"


async def test_a_code_of_a_user_disabled_since_yields_nothing(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        approved = await approve(runtime, session, "cal", OFFLINE)
        await session.execute(update(User).where(User.id == approved.user.id).values(disabled_at=1))
        await session.commit()
    with pytest.raises(OAuthError) as refused:
        await redeemed(runtime, approved)
    assert "disabled" in refused.value.description


async def test_a_refresh_rotates_and_the_old_token_then_revokes_the_family(runtime: Runtime) -> None:
    runtime.settings.auth_refresh_grace_seconds = 0
    async with runtime.sessions() as session:
        approved = await approve(runtime, session, "dee", OFFLINE)
    first = await redeemed(runtime, approved)
    assert first.refresh_token is not None
    request = RefreshTokenRequest(grant_type="refresh_token", refresh_token=first.refresh_token)
    async with runtime.sessions() as session:
        second = await refresh(runtime, session, approved.client, request)
        await session.commit()
    assert second.refresh_token not in (None, first.refresh_token)
    async with runtime.sessions() as session:
        with pytest.raises(OAuthError) as reuse:
            await refresh(runtime, session, approved.client, request)
    assert reuse.value.persist  # the endpoint commits the family's revocation although the request fails


async def test_client_credentials_only_within_the_operators_allowance(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        machine, _ = create_client(
            session,
            origin="machine",
            redirect_uris=[],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=["client_credentials"],
            allowed_resources=[RESOURCE_A],
            allowed_scopes=["mcp:tools"],
        )
        await session.commit()
        issued = await client_credentials(
            runtime,
            session,
            machine,
            ClientCredentialsRequest(grant_type="client_credentials", resource=[RESOURCE_A]),
        )
        assert issued.scopes == ["mcp:tools"]
        with pytest.raises(OAuthError) as elsewhere:
            await client_credentials(
                runtime,
                session,
                machine,
                ClientCredentialsRequest(grant_type="client_credentials", resource=[RESOURCE_B]),
            )
    assert elsewhere.value.error == "invalid_target"
