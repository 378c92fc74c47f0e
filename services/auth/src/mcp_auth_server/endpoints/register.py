"""Dynamic client registration (RFC 7591 §3), POST /register.

Secrets are returned once and stored hashed. Deprecated by MCP 2026-07-28 in favour of client
ID metadata documents, but still how most MCP clients register today.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.oauth.errors import NO_STORE, OAuthError
from mcp_auth_server.oauth.registration_policy import check_may_register, check_redirect_uris
from mcp_auth_server.oauth.rfc7591_client_metadata import parse_client_metadata
from mcp_auth_server.oauth.rfc8259_json import InvalidJson, parse_json_text
from mcp_auth_server.store import audit
from mcp_auth_server.store.clients import create_client

router = APIRouter()


@router.post("/register", status_code=201, summary="Dynamic client registration (RFC 7591)")
async def register(request: Request, runtime: RuntimeDep) -> JSONResponse:
    await runtime.rate_limits.check_address(runtime.rate_limits.register, request)
    check_may_register(runtime.settings, request.headers.get("authorization"))
    body = await request.body()  # bounded while it streams (web/body_limits.py)
    try:
        document: Any = parse_json_text(body or b"null")
    except InvalidJson as exc:
        raise OAuthError("invalid_client_metadata", f"the request body must be JSON: {exc}") from None
    metadata = parse_client_metadata(
        document,
        runtime.settings.auth_registration_allowed_schemes,
        allow_loopback_jwks_uri=runtime.client_keys.allow_loopback,
    )
    check_redirect_uris(runtime.settings, metadata.redirect_uris)
    async with transaction(runtime) as session:
        client, secret = create_client(
            session,
            origin="dcr",
            redirect_uris=metadata.redirect_uris,
            token_endpoint_auth_method=metadata.token_endpoint_auth_method,
            grant_types=list(metadata.grant_types),
            client_name=metadata.client_name,
            application_type=metadata.application_type,
            metadata_document=metadata.model_dump(exclude_none=True),
            jwks=metadata.jwks,
            jwks_uri=metadata.jwks_uri,
        )
        audit.record(
            session,
            "client_registered",
            client_id=client.client_id,
            ip=request.client.host if request.client else None,
            client_name=metadata.client_name,
        )
    answer: dict[str, Any] = {
        **metadata.model_dump(exclude_none=True),
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
    }
    if secret is not None:
        answer.update(client_secret=secret, client_secret_expires_at=0)
    return JSONResponse(answer, status_code=201, headers=NO_STORE)
