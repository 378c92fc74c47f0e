"""Finding the client a request names: our own registrations, or a client ID metadata document.

An https client_id is resolved by fetching its document (oauth/client_id_metadata_document.py)
and kept as a `clients` row (origin `cimd`) until the document's cache lifetime ends; grants
and codes refer to that row. Clients that registered themselves (DCR, CIMD) and have not been
used for AUTH_CLIENT_IDLE_DAYS are forgotten, so a client like claude.ai, which registers
again on 401 `invalid_client`, recovers by itself. Client authentication at /token, /revoke and
/introspect may read registered clients through a cache of a few seconds (store/client_cache.py,
AUTH_CLIENT_CACHE_SECONDS); /authorize always reads them, since what it stores refers to the client.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.client_id_metadata_document import (
    InvalidMetadataDocument,
    MetadataDocumentFetcher,
    is_metadata_document_client_id,
)
from mcp_auth_server.store.client_cache import ClientCache
from mcp_auth_server.store.clients import get_client, read_client

SELF_REGISTERED = ("dcr", "cimd")


class ClientResolver:
    def __init__(
        self, fetcher: MetadataDocumentFetcher | None, idle_days: int, cache_seconds: float = 0
    ) -> None:
        self._fetcher = fetcher
        self._idle_seconds = idle_days * 86_400
        self.cache = ClientCache(cache_seconds)

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()

    async def find(self, session: AsyncSession, client_id: str, *, cached: bool = False) -> Client | None:
        """The client, or None if unknown; InvalidMetadataDocument if its document is unacceptable.

        Uses the request's own session throughout: a second pooled connection per request
        would deadlock a full pool. `cached`: a registered client's record may come from the cache (at
        most AUTH_CLIENT_CACHE_SECONDS old), for requests that only authenticate the client.
        """
        if is_metadata_document_client_id(client_id):
            if self._fetcher is None:
                raise InvalidMetadataDocument("client ID metadata documents are not accepted by this server")
            client = await get_client(session, client_id)
            if client is None or (client.metadata_expires_at or 0) <= now():
                client = await self._store_document(session, client_id, client)
            return client
        client = self.cache.get(client_id) if cached else None
        if client is None:
            client = await read_client(session, client_id)
            if client is not None:
                self.cache.put(client)
        if client is not None and self._idle(client):
            await session.execute(delete(Client).where(Client.client_id == client_id))
            await session.commit()
            return None
        return client

    def _idle(self, client: Client) -> bool:
        if not self._idle_seconds or client.origin not in SELF_REGISTERED:
            return False
        return (client.last_used_at or client.created_at) < now() - self._idle_seconds

    async def _store_document(
        self, session: AsyncSession, client_id: str, row: Client | None
    ) -> Client | None:
        assert self._fetcher is not None
        document = await self._fetcher.fetch(client_id)  # failures propagate and are never cached
        moment = now()
        if row is None:
            row = Client(
                client_id=client_id,
                origin="cimd",
                token_endpoint_auth_method="none",
                grant_types=["authorization_code", "refresh_token"],
                created_at=moment,
            )
            session.add(row)
        row.client_name = document.client_name
        row.redirect_uris = document.redirect_uris
        row.metadata_document = document.document
        row.application_type = str(document.document.get("application_type", "web"))[:20]
        row.metadata_expires_at = moment + document.max_age
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # a concurrent request stored it first; theirs is as good
        return await get_client(session, client_id)
