"""The public signing keys as a JWK Set (RFC 7517 §5), cacheable by resource servers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mcp_auth_server.endpoints.dependencies import RuntimeDep
from mcp_auth_server.store.signing_keys import JWKS_MAX_AGE

router = APIRouter()


@router.get("/jwks.json", summary="JSON Web Key Set")
async def jwks(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        runtime.keyring.jwks,
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
        media_type="application/jwk-set+json",
    )
