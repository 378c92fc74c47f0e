"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3).

`client_secret_basic` (§2.3.1: id and secret form-urlencoded inside Basic), `client_secret_post`,
or `none` for public clients, which identify themselves with `client_id` alone. A client uses
exactly one method (§2.3). Secrets are compared as hashes in constant time. An unknown or
deleted client gets 401 `invalid_client`, which makes claude.ai register again.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request

from mcp_auth_server.crypto.opaque_tokens import secret_matches
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.errors import OAuthError, invalid_client, invalid_request
from mcp_auth_server.store.client_resolution import ClientResolver
from mcp_auth_server.store.clients import is_public


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed Basic credentials") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise invalid_client("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def claimed_client_id(request: Request, form: FormData) -> str | None:
    """The client a request says it is, before authenticating it (for rate limiting)."""
    try:
        basic = _basic_credentials(request)
    except OAuthError:
        basic = None
    return basic[0] if basic else (str(form["client_id"]) if "client_id" in form else None)


async def authenticate_client(
    clients: ClientResolver, session: AsyncSession, request: Request, form: FormData
) -> Client:
    basic = _basic_credentials(request)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic and form_secret is not None:
        raise invalid_request("use one client authentication method, not Basic and client_secret together")
    secret: str | None
    if basic:
        client_id, secret = basic
        if form_id is not None and form_id != client_id:
            raise invalid_request("client_id in the body differs from the authenticated client")
    else:
        client_id, secret = str(form_id or ""), None if form_secret is None else str(form_secret)
    if not client_id:
        raise invalid_client("client authentication is required")
    try:
        client = await clients.find(session, client_id)
    except InvalidMetadataDocument as exc:
        raise invalid_client(f"the client metadata document was refused: {exc}") from None
    if client is None:
        raise invalid_client("unknown client")
    if is_public(client):
        if secret:
            raise invalid_client("this is a public client; it has no secret")
        return client
    if secret is None or not secret_matches(secret, client.client_secret_hash):
        raise invalid_client("client authentication failed")
    return client
