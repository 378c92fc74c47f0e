"""Issue 6's end-to-end: the mcp SDK's client identifies itself with a client ID metadata document
(`client_metadata_url`) served over https by a loopback host whose CA is given to the auth service
(AUTH_CLIENT_METADATA_CA_BUNDLE), and goes from a 401 to a tool call without registering."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import DocumentHost
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.tls import make_certificates

from .sdk_client import REDIRECT_URI, MemoryStorage, Person, oauth_mcp_client
from .stack import Stack, running_stack


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DocumentHost, str, str]]:
    certificates = make_certificates(tmp_path_factory.mktemp("cimd-tls"))
    host = DocumentHost()
    with BackgroundServer(host, tls=certificates) as server:
        yield host, server.base_url.replace("127.0.0.1", "localhost"), certificates.ca_file


@pytest.fixture(scope="module")
def stack(
    migrated_database: str, github_server: GitHubStandIn, documents: tuple[DocumentHost, str, str]
) -> Iterator[Stack]:
    yield from running_stack(migrated_database, github_server, AUTH_CLIENT_METADATA_CA_BUNDLE=documents[2])


async def test_sdk_client_signs_in_with_its_metadata_document(
    stack: Stack, github_server: GitHubStandIn, documents: tuple[DocumentHost, str, str]
) -> None:
    host, base, _ = documents
    client_id = f"{base}/mcp-client/metadata.json"
    host.put_json(
        "/mcp-client/metadata.json",
        {
            "client_id": client_id,
            "client_name": "SDK via metadata document",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )
    github_server.state.add_user("docuser")
    github_server.state.auto_login = "docuser"
    storage = MemoryStorage()
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http)
        async with oauth_mcp_client(
            next(iter(stack.mcp)), person, storage, client_metadata_url=client_id
        ) as client:
            who = await client.call_tool("get_user_info", {})
            assert not who.is_error, who
            assert "docuser" in str(who.structured_content)
    assert storage.client_info is not None
    assert storage.client_info.client_id == client_id  # no registration happened
    assert "SDK via metadata document" in person.pages_seen[0]
    assert "localhost" in person.pages_seen[0]
    assert host.requests == ["/mcp-client/metadata.json"]
