"""Creating clients by naming metadata documents, past the registration rate limit.

`/register` creates at most AUTH_RATE_LIMIT_REGISTER clients per source address. But a `client_id` that
names a metadata document not seen before also creates a client (a stored `clients` row, kept until it
is idle for AUTH_CLIENT_IDLE_DAYS, by default for ever): anyone with a host of their own could create one
per /authorize (60 a minute) or per /revoke (unlimited) from one address, each with up to 5 KB of
document, and grow the database without bound. A new document client now spends the address's
registration budget, as registering does; a client already stored spends nothing (every claude.ai user
after the first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..conftest import ISSUER
from ..flow import CALLBACK, new_request

DOCUMENTS = 8


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def document_host(certificates: ServerCertificate) -> Iterator[str]:
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        base = server.base_url.replace("127.0.0.1", "localhost")
        for n in range(DOCUMENTS):
            documents.put_json(f"/c/{n}", {"client_id": f"{base}/c/{n}", "redirect_uris": [CALLBACK]})
        yield base


async def test_naming_fresh_metadata_documents_cannot_create_clients_faster_than_registering(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate, document_host: str
) -> None:
    base = document_host
    settings = make_settings(
        auth_client_metadata_ca_bundle=certificates.ca_file,
        auth_rate_limits=True,
        auth_rate_limit_register="2/hour",
    )
    app = create_app(settings)

    def speaking_from(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url=ISSUER)

    async with app.router.lifespan_context(app):
        async with speaking_from("198.51.100.7") as attacker:
            pages = [(await attacker.get(new_request(f"{base}/c/{n}").url())).status_code for n in range(4)]
            again = await attacker.get(new_request(f"{base}/c/0").url())  # already stored: spends nothing
        assert pages == [200, 200, 429, 429]
        assert again.status_code == 200, again.text
        async with speaking_from("198.51.100.8") as revoker:
            revocations = [
                (await revoker.post("/revoke", data={"token": "t", "client_id": f"{base}/c/{n}"})).status_code
                for n in range(4, 8)
            ]
        assert revocations == [200, 200, 429, 429]
        async with speaking_from("198.51.100.9") as someone_else:  # their own budget is untouched
            page = await someone_else.get(new_request(f"{base}/c/3").url())
        assert page.status_code == 200, page.text
