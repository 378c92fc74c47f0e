"""Dynamic client registration (RFC 7591 §3), POST /register.

Secrets are returned once and stored hashed. Deprecated by MCP 2026-07-28 in favour of client
ID metadata documents, but still how most MCP clients register today.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.forms import declared_size_fits
from mcp_auth_server.oauth.errors import NO_STORE, OAuthError
from mcp_auth_server.oauth.registration_policy import check_may_register, check_redirect_uris
from mcp_auth_server.oauth.rfc7591_client_metadata import parse_client_metadata
from mcp_auth_server.store import audit
from mcp_auth_server.store.clients import create_client
from mcp_auth_server.web.rate_limits import client_ip

router = APIRouter()
MAX_BODY = 16 * 1024


@router.post("/register", status_code=201, summary="Dynamic client registration (RFC 7591)")
async def register(request: Request, runtime: RuntimeDep) -> JSONResponse:
    runtime.rate_limits.check(runtime.rate_limits.register, client_ip(request))
    check_may_register(runtime.settings, request.headers.get("authorization"))
    if not declared_size_fits(request, MAX_BODY):
        raise OAuthError("invalid_client_metadata", "the registration request is too large")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise OAuthError("invalid_client_metadata", "the registration request is too large")
    try:
        document: Any = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OAuthError("invalid_client_metadata", "the request body must be JSON") from None
    metadata = parse_client_metadata(document, runtime.settings.auth_registration_allowed_schemes)
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
