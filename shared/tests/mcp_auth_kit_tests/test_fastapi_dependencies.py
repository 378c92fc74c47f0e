"""`require_token` guards ordinary FastAPI routes with the same checks and challenges as the MCP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest_asyncio
from fastapi import Depends, FastAPI
from mcp.server.auth.provider import AccessToken

from mcp_auth_kit import JWTVerifier, require_token
from mcp_auth_kit.fastapi_dependencies import ResourceAuth

from .conftest import IssuerStandIn, Served, Signer, claims_for, serve, sign

RESOURCE = "http://127.0.0.1:9200/api"
METADATA = "http://127.0.0.1:9200/.well-known/oauth-protected-resource/api"


@pytest_asyncio.fixture
async def api(issuer: IssuerStandIn) -> AsyncIterator[str]:
    verifier = JWTVerifier(issuer=issuer.url, resource_url=RESOURCE)
    settings = ResourceAuth(verifier=verifier, resource_metadata=METADATA)
    app = FastAPI()

    needs_profile = Depends(require_token(["profile"], settings=settings))

    @app.get("/me")
    async def me(token: AccessToken = needs_profile) -> dict[str, str]:
        return {"sub": token.subject or ""}

    async with serve(app) as url:
        yield url
    await verifier.aclose()


async def test_route_answers_the_token_holder(api: str, issuer: IssuerStandIn, es256: Signer) -> None:
    token = sign(es256, claims_for(issuer.url, RESOURCE, scope="profile"))
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{api}/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"sub": "user-1"}


async def test_route_challenges_like_the_mcp_endpoint(api: str, issuer: IssuerStandIn, es256: Signer) -> None:
    narrow = sign(es256, claims_for(issuer.url, RESOURCE, scope="mcp:tools"))
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{api}/me")
        invalid = await client.get(f"{api}/me", headers={"Authorization": "Bearer nope"})
        insufficient = await client.get(f"{api}/me", headers={"Authorization": f"Bearer {narrow}"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA}", scope="profile"'
    assert invalid.status_code == 401
    assert invalid.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert insufficient.status_code == 403
    assert insufficient.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert insufficient.headers["www-authenticate"].endswith('scope="profile"')


async def test_protect_installs_the_settings_for_extra_routes(
    served: Served, token_for: Callable[..., str]
) -> None:
    # protect() stores its settings on app.state, so require_token() needs no arguments there.
    from mcp_auth_kit import protect
    from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE

    from .conftest import notes_server

    app = protect(notes_server().mcp, resource_url=served.resource_url, issuer=served.issuer)
    settings = getattr(app.state, STATE_ATTRIBUTE)
    assert settings.resource_metadata == served.metadata_url
    assert isinstance(settings.verifier, JWTVerifier)
