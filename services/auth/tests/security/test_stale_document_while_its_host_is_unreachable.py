"""A known metadata-document client must not be locked out because its document cannot be re-fetched.

Anyone can keep every fetch slot busy with slow hosts of their own (oauth/outbound_fetches.py), and a
document host can be briefly down. Before the fix, a client whose stored document had expired (claude.ai's,
after its cache lifetime) was then refused for every one of its users (401 invalid_client at /token, an
"Unverifiable application" page at /authorize) until a fetch succeeded. Now the stored copy serves while
the document cannot be had (RFC 5861 §4 stale-if-error, bounded to a day); a document its host *answers*
with a refusal (a 404: the owner withdrew it) still takes effect at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client
from mcp_auth_server.settings import AuthSettings
from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import Answer, DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..conftest import serve_in_process
from ..flow import CALLBACK, new_request


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def document_host(certificates: ServerCertificate) -> Iterator[tuple[DocumentHost, str]]:
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        yield documents, server.base_url.replace("127.0.0.1", "localhost")


def consent_page_for(client: httpx.AsyncClient, client_id: str) -> Awaitable[httpx.Response]:
    """/authorize for the client: its consent page when the client is known (the request is stored)."""
    return client.get(new_request(client_id).url())


async def expire(database: async_sessionmaker[AsyncSession], client_id: str) -> None:
    """The stored copy's lifetime has just ended."""
    async with database() as session:
        await session.execute(
            update(Client).where(Client.client_id == client_id).values(metadata_expires_at=now() - 1)
        )
        await session.commit()


async def test_a_known_document_client_is_served_from_its_stored_copy_while_its_host_cannot_answer(
    make_settings: Callable[..., AuthSettings],
    certificates: ServerCertificate,
    document_host: tuple[DocumentHost, str],
    database: async_sessionmaker[AsyncSession],
) -> None:
    documents, base = document_host
    claude, withdrawn = f"{base}/claude.json", f"{base}/withdrawn.json"
    for client_id in (claude, withdrawn):
        documents.put_json(
            client_id.removeprefix(base), {"client_id": client_id, "redirect_uris": [CALLBACK]}
        )
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as client:
        for client_id in (claude, withdrawn):
            first = await consent_page_for(client, client_id)
            assert first.status_code == 200, first.text  # fetched, and stored with the request
            await expire(database, client_id)

        # Its owner withdraws a document: that is an answer, and it takes effect at once.
        documents.answers["/withdrawn.json"] = Answer(status_code=404)
        refused = await consent_page_for(client, withdrawn)
        assert refused.status_code == 400
        assert "HTTP 404" in refused.text

        # The host now dribbles (or every fetch slot is taken by someone's slow hosts): no fetch in time.
        documents.answers["/claude.json"].dribble_seconds = 2.0
        during = await consent_page_for(client, claude)
        assert during.status_code == 200, during.text  # the consent page from the stored copy, not refused
        assert documents.requests.count("/claude.json") == 2  # it was tried first
