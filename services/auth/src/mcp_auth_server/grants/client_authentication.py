"""Finding the client a token, revocation or introspection request comes from, and checking its proof.

An unknown or deleted client gets 401 `invalid_client`, on which claude.ai registers again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.errors import OAuthError, invalid_client
from mcp_auth_server.oauth.rfc6749_client_authentication import PresentedClient, check_client_authentication
from mcp_auth_server.policy.credentials import CredentialRefused, check_client
from mcp_auth_server.policy.question import Path
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.client_resolution import ClientLookup
from mcp_auth_server.store.standings import client_standing


async def look_up_client(runtime: Runtime, presented: PresentedClient) -> ClientLookup:
    """Before the request's transaction: a metadata-document client's document is fetched here, with no
    database connection held (store/client_resolution.py)."""
    try:
        return await runtime.clients.look_up(presented.client_id)
    except InvalidMetadataDocument as exc:
        raise invalid_client(f"the client metadata document was refused: {exc}") from None


async def authenticate_client(
    runtime: Runtime, session: AsyncSession, presented: PresentedClient, lookup: ClientLookup
) -> Client:
    """The first step of the request's transaction. What it changed (a fetched document stored, an
    idle client forgotten) is kept even when the client is then refused."""
    client = await runtime.clients.find(session, lookup)
    if client is None:
        raise _persisting(invalid_client("unknown client"))
    try:
        check_client_authentication(presented, client.token_endpoint_auth_method, client.client_secret_hash)
    except OAuthError as refused:
        raise _persisting(refused) from None
    return client


def _persisting(error: OAuthError) -> OAuthError:
    error.persist = True
    return error


def require_client_allowed(path: Path, client: Client, *, for_user: bool) -> None:
    """Refuse at once a client that may not obtain credentials along `path` (the policy's rule 2), before
    any of the request's work is done; the policy asks again with everything else when it decides."""
    try:
        check_client(path, client_standing(client), has_user=for_user)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
