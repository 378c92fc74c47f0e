"""Discovery documents: RFC 8414 metadata, also served where OIDC-style clients look for it.

Clients probe `/.well-known/oauth-authorization-server` then `/.well-known/openid-configuration`;
both answer the same document (we are an OAuth server; no ID tokens are promised).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcp_auth_server.endpoints.dependencies import RuntimeDep
from mcp_auth_server.oauth.rfc8414_metadata import authorization_server_metadata

router = APIRouter()


@router.get("/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)")
@router.get("/.well-known/openid-configuration", summary="The same metadata, for OIDC-style discovery")
async def metadata(runtime: RuntimeDep) -> JSONResponse:
    await runtime.resources.refresh_if_stale()
    document = authorization_server_metadata(
        runtime.settings.auth_issuer,
        runtime.resources.scopes_supported(),
        client_metadata_documents=runtime.settings.auth_client_metadata_documents,
        registration=runtime.settings.auth_registration_enabled,
        dpop_algorithms=runtime.dpop.algorithms,
    )
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})
