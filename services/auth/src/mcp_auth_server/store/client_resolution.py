"""Finding the client a request names: our own registrations, or a client ID metadata document.

An https client_id is resolved by fetching its document (oauth/client_id_metadata_document.py)
and kept as a `clients` row (origin `cimd`) until the document's cache lifetime ends; grants
and codes refer to that row. Clients that registered themselves (DCR, CIMD) and have not been
used for AUTH_CLIENT_IDLE_DAYS are forgotten, so a client like claude.ai, which registers
again on 401 `invalid_client`, recovers by itself.

Resolution has two steps so that no pooled database connection is held while a document is
fetched (a slow host named by many requests would otherwise empty the pool for everyone):
`look_up(client_id)` runs before the request's transaction — for a metadata-document client it
reads the stored row in a short session of its own, closed before fetching, and fetches only if
that row is missing or expired; `find(session, lookup)` then runs inside the request's one
transaction and stores what was fetched there, committed with the rest of the request at the edge.
Client authentication at /token, /revoke and /introspect may read registered clients through a
cache of a few seconds (store/client_cache.py, AUTH_CLIENT_CACHE_SECONDS); /authorize always reads
them, since what it stores refers to the client.

A stored document whose lifetime ended still serves, for up to STALE_IF_ERROR seconds more, while a fresh
copy cannot be fetched (RFC 5861 §4 stale-if-error): anyone can keep every fetch slot busy with slow hosts
of their own, and that must not lock out the users of a client we already know (claude.ai's document).
What its host *answers* (a 404, a changed document that is refused) takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.client_id_metadata_document import (
    MAX_CACHE,
    ClientMetadataDocument,
    DocumentUnavailable,
    InvalidMetadataDocument,
    MetadataDocumentFetcher,
    is_metadata_document_client_id,
)
from mcp_auth_server.store.client_cache import ClientCache
from mcp_auth_server.store.clients import get_client, read_client, storable_client_id

SELF_REGISTERED = ("dcr", "cimd")
STALE_IF_ERROR = MAX_CACHE  # a day past its lifetime at most, the longest a document may be cached


@dataclass(frozen=True)
class ClientLookup:
    """A client id, with its metadata document when one was fetched for this request (to be stored);
    `new`: no client was stored under this id, so storing the document creates one (a registration)."""

    client_id: str
    document: ClientMetadataDocument | None = None
    new: bool = False


class ClientResolver:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fetcher: MetadataDocumentFetcher | None,
        idle_days: int,
        cache_seconds: float = 0,
    ) -> None:
        self._sessions = sessions
        self._fetcher = fetcher
        self._idle_seconds = idle_days * 86_400
        self.cache = ClientCache(cache_seconds)

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()

    async def look_up(self, client_id: str) -> ClientLookup:
        """Before the request's transaction: fetch the client's metadata document if its stored copy
        is missing or expired, holding no database connection meanwhile. InvalidMetadataDocument if
        the document is unacceptable or could not be had within the fetch bounds."""
        if not is_metadata_document_client_id(client_id):
            return ClientLookup(client_id)
        if self._fetcher is None:
            raise InvalidMetadataDocument("client ID metadata documents are not accepted by this server")
        if not storable_client_id(client_id):
            raise InvalidMetadataDocument("the client_id URL is too long")
        async with self._sessions() as session:  # closed (its connection back in the pool) before fetching
            stored = await get_client(session, client_id)
            expires_at = None if stored is None else (stored.metadata_expires_at or 0)
        if expires_at is not None and expires_at > now():
            return ClientLookup(client_id)
        try:
            return ClientLookup(client_id, await self._fetcher.fetch(client_id), new=expires_at is None)
        except DocumentUnavailable:
            if expires_at is not None and expires_at + STALE_IF_ERROR > now():
                return ClientLookup(client_id)  # the stored copy serves (see the module)
            raise

    async def find(
        self, session: AsyncSession, lookup: ClientLookup, *, cached: bool = False
    ) -> Client | None:
        """The client, or None if unknown or forgotten (idle). Changes only the request's own
        transaction (a fetched document stored, an idle client deleted); never commits. `cached`: a
        registered client's record may come from the cache (at most AUTH_CLIENT_CACHE_SECONDS old), for
        requests that only authenticate the client."""
        client_id = lookup.client_id
        if lookup.document is not None:
            return await self._store_document(session, lookup.document)
        if is_metadata_document_client_id(client_id):
            # Fresh when look_up() read it; one that expired since is still served for this request.
            return await get_client(session, client_id)
        client = self.cache.get(client_id) if cached else None
        if client is None:
            client = await read_client(session, client_id)
            if client is not None:
                self.cache.put(client)
        if client is not None and self._idle(client):
            await session.execute(delete(Client).where(Client.client_id == client_id))
            return None
        return client

    def _idle(self, client: Client) -> bool:
        if not self._idle_seconds or client.origin not in SELF_REGISTERED:
            return False
        return (client.last_used_at or client.created_at) < now() - self._idle_seconds

    async def _store_document(self, session: AsyncSession, document: ClientMetadataDocument) -> Client | None:
        moment = now()
        try:
            # A savepoint: a concurrent request storing the same client first must not fail this one.
            async with session.begin_nested():
                row = await get_client(session, document.client_id)
                if row is None:
                    row = Client(
                        client_id=document.client_id,
                        origin="cimd",
                        token_endpoint_auth_method="none",
                        grant_types=["authorization_code", "refresh_token"],
                        created_at=moment,
                    )
                    session.add(row)
                row.client_name = document.client_name
                row.token_endpoint_auth_method = document.token_endpoint_auth_method
                row.jwks, row.jwks_uri = document.jwks, document.jwks_uri
                row.redirect_uris = document.redirect_uris
                row.metadata_document = document.document
                row.application_type = str(document.document.get("application_type", "web"))[:20]
                row.metadata_expires_at = moment + document.max_age
        except IntegrityError:
            pass  # stored first by a concurrent request; theirs is as good
        return await get_client(session, document.client_id)
