"""The token endpoint (RFC 6749 §3.2), POST /token: authenticate the client, dispatch the grant.

Every answer is JSON with `Cache-Control: no-store`; every error is `{"error",
"error_description"}`; malformed input is a 400, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from mcp_auth_server.db.models import Client
from mcp_auth_server.endpoints.dependencies import runtime_of
from mcp_auth_server.grants.authorization_code import exchange_code
from mcp_auth_server.grants.client_credentials import client_credentials
from mcp_auth_server.grants.refresh_token import refresh
from mcp_auth_server.grants.token_exchange import exchange_for_upstream
from mcp_auth_server.oauth.errors import OAuthError, invalid_request
from mcp_auth_server.oauth.rfc6749_client_authentication import authenticate_client, claimed_client_id
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.clients import touch
from mcp_auth_server.web.rate_limits import client_ip

Grant = Callable[[Runtime, AsyncSession, Client, FormData], Awaitable[Response]]
GRANTS: dict[str, Grant] = {
    "authorization_code": exchange_code,
    "refresh_token": refresh,
    "client_credentials": client_credentials,
    "urn:ietf:params:oauth:grant-type:token-exchange": exchange_for_upstream,
}
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024


def declared_size_fits(request: Request, limit: int) -> bool:
    """Refuse an oversized body by its Content-Length, before reading (buffering) any of it."""
    declared = request.headers.get("content-length", "")
    return not declared.isdigit() or int(declared) <= limit


async def read_form(request: Request) -> FormData:
    """The request's form, refusing other media types and repeated single-valued parameters."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise invalid_request(f"the body must be {FORM}")
    if not declared_size_fits(request, MAX_BODY):
        raise invalid_request("the request is too large")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise invalid_request("the request is too large")
    try:
        # Plain urlencoded parsing: several times cheaper than the multipart-capable form parser.
        pairs: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        )
        form = FormData(pairs)
    except UnicodeDecodeError:
        raise invalid_request("the body must be UTF-8") from None
    repeated = sorted({key for key in form if key != "resource" and len(form.getlist(key)) > 1})
    if repeated:
        raise invalid_request(f"{', '.join(repeated)} must appear once (RFC 6749 §3.2)")
    return form


router = APIRouter()


@router.post("/token", summary="Token endpoint (RFC 6749 §3.2)")
async def token(request: Request) -> Response:
    # The hottest endpoint takes no FastAPI dependencies: resolving them (an exit stack for the
    # session) was a tenth of a refresh's CPU. It opens its session as get_session does.
    runtime = runtime_of(request)
    form = await read_form(request)
    limits = runtime.rate_limits
    limits.check(limits.token, client_ip(request), claimed_client_id(request, form))
    grant_type = str(form.get("grant_type") or "")
    grant = GRANTS.get(grant_type)
    if grant is None:
        if not grant_type:
            raise invalid_request("grant_type is required")
        raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
    async with runtime.sessions() as session:
        client = await authenticate_client(runtime.clients, session, request, form)
        if grant_type in ("authorization_code", "refresh_token") and grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"this client is not registered for {grant_type}")
        await touch(session, client)
        return await grant(runtime, session, client, form)
