"""Finding the client a token, revocation or introspection request comes from, and checking its proof.

An unknown or deleted client gets 401 `invalid_client`, on which claude.ai registers again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.errors import invalid_client
from mcp_auth_server.oauth.rfc6749_client_authentication import PresentedClient, check_client_authentication
from mcp_auth_server.policy.credentials import CredentialRefused, check_client
from mcp_auth_server.policy.question import Path
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.standings import client_standing


async def authenticate_client(runtime: Runtime, session: AsyncSession, presented: PresentedClient) -> Client:
    try:
        # A record at most AUTH_CLIENT_CACHE_SECONDS old. The grants write rows naming the client only
        # after reading one that is deleted with it (a code, a refresh token's grant), so a client removed
        # meanwhile never gets a row stored in its name; client_credentials is the documented bound.
        client = await runtime.clients.find(session, presented.client_id, cached=True)
    except InvalidMetadataDocument as exc:
        raise invalid_client(f"the client metadata document was refused: {exc}") from None
    if client is None:
        raise invalid_client("unknown client")
    check_client_authentication(presented, client.token_endpoint_auth_method, client.client_secret_hash)
    return client


def require_client_allowed(path: Path, client: Client, *, for_user: bool) -> None:
    """Refuse at once a client that may not obtain credentials along `path` (the policy's rule 2), before
    any of the request's work is done; the policy asks again with everything else when it decides."""
    try:
        check_client(path, client_standing(client), has_user=for_user)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
