"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, MCP 2026-07-28):
the flow with a document served over https by a loopback host with its own CA, and the SSRF
defences — each refusal with a clear page and no outbound request beyond the first (§6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import Client
from mcp_auth_server.settings import AuthSettings
from mcp_testing.background_server import BackgroundServer
from mcp_testing.browser import Page
from mcp_testing.document_host import Answer, DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..conftest import serve_in_process
from ..flow import CALLBACK, approve_and_sign_in, browser_for, new_request, redeem

CHATGPT_METHODS = ["none", "private_key_jwt"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def host(certificates: ServerCertificate) -> Iterator[tuple[DocumentHost, str]]:
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        yield documents, server.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture
async def cimd_client(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as client:
        yield client


def document(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Metadata client",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
        **extra,
    }


async def test_metadata_advertises_documents_with_the_none_method(cimd_client: httpx.AsyncClient) -> None:
    metadata = (await cimd_client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


async def test_a_document_client_signs_in_and_redeems_its_code(
    cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    client_id = f"{base}/clients/alpha.json"
    documents.put_json(
        "/clients/alpha.json",
        document(client_id, token_endpoint_auth_methods_supported=CHATGPT_METHODS),
        **{"cache-control": "max-age=600"},
    )
    request = new_request(client_id)
    browser = browser_for(cimd_client)
    consent = await browser.open(request.url())
    assert isinstance(consent, Page)
    assert "Metadata client" in consent.text
    assert "vouched for by <strong>localhost</strong>" in consent.text  # the document's host is shown
    assert "Verified domain: <strong>localhost</strong>" in consent.text
    assert "Unverified application" not in consent.text
    answer = await approve_and_sign_in(browser, request.url(), "mallory")
    response = await redeem(cimd_client, request, answer["code"])
    assert response.status_code == 200, response.text
    assert documents.requests == ["/clients/alpha.json"]  # cached per max-age, fetched once


async def test_redirect_uris_are_checked_again_at_the_token_endpoint(
    cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    client_id = f"{base}/clients/beta.json"
    documents.put_json("/clients/beta.json", document(client_id))
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(cimd_client), request.url(), "trent")
    # The document drops the redirect URI and its cached copy expires before the code is redeemed.
    documents.put_json(
        "/clients/beta.json", document(client_id, redirect_uris=["https://elsewhere.example/cb"])
    )
    runtime = cimd_client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        await session.execute(
            update(Client).where(Client.client_id == client_id).values(metadata_expires_at=0)
        )
        await session.commit()
    response = await redeem(cimd_client, request, answer["code"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


REFUSED_DOCUMENTS: dict[str, Callable[[str], Answer]] = {
    "client_id_differs": lambda cid: Answer(
        body=f'{{"client_id": "{cid}x", "redirect_uris": ["{CALLBACK}"]}}'.encode()
    ),
    "contains_a_secret": lambda cid: Answer(
        body=f'{{"client_id": "{cid}", "redirect_uris": ["{CALLBACK}"], "client_secret": "s"}}'.encode()
    ),
    "oversized": lambda cid: Answer(
        body=(
            f'{{"client_id": "{cid}", "redirect_uris": ["{CALLBACK}"], "pad": "' + "x" * 6000 + '"}'
        ).encode()
    ),
    "redirect_to_an_internal_host": lambda cid: Answer(
        302, headers={"location": "https://10.0.0.1/doc.json"}
    ),
    "server_error": lambda cid: Answer(500, b"oops"),
    "not_json": lambda cid: Answer(body=b"<html>hi</html>"),
    "private_key_jwt_only": lambda cid: Answer(
        body=(
            f'{{"client_id": "{cid}", "redirect_uris": ["{CALLBACK}"], '
            '"token_endpoint_auth_method": "private_key_jwt"}'
        ).encode()
    ),
    "javascript_redirect_uri": lambda cid: Answer(
        body=f'{{"client_id": "{cid}", "redirect_uris": ["javascript:alert(1)"]}}'.encode()
    ),
    # Issue 12: browser-internal and operating-system schemes, and private-use ones without a period.
    "intent_redirect_uri": lambda cid: Answer(
        body=f'{{"client_id": "{cid}", "redirect_uris": ["intent://evil.example/cb"]}}'.encode()
    ),
    "ms_settings_redirect_uri": lambda cid: Answer(
        body=f'{{"client_id": "{cid}", "redirect_uris": ["ms-settings:privacy"]}}'.encode()
    ),
    "unlisted_private_scheme_redirect_uri": lambda cid: Answer(
        body=f'{{"client_id": "{cid}", "redirect_uris": ["myapp://callback"]}}'.encode()
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_DOCUMENTS))
async def test_unacceptable_document_is_refused_after_exactly_one_request(
    case: str, cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    client_id = f"{base}/clients/{case}.json"
    documents.answers[f"/clients/{case}.json"] = REFUSED_DOCUMENTS[case](client_id)
    page = await browser_for(cimd_client).open(new_request(client_id).url())
    assert isinstance(page, Page)
    assert page.status_code == 400
    assert "metadata document was refused" in page.text
    assert documents.requests == [f"/clients/{case}.json"]


async def test_non_https_logo_and_client_uris_in_a_document_are_dropped(
    cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    """Issue 12: "metadata documents' logo_uri/client_uri are not checked (`javascript:` accepted)"."""
    documents, base = host
    client_id = f"{base}/clients/links.json"
    links = {
        "logo_uri": "javascript:alert(document.domain)",
        "client_uri": "data:text/html,<script>alert(1)</script>",
        "policy_uri": "http://evil.example/policy",
        "tos_uri": "https://localhost/tos",
    }
    documents.put_json("/clients/links.json", document(client_id, **links))
    consent = await browser_for(cimd_client).open(new_request(client_id).url())
    assert isinstance(consent, Page), consent
    assert consent.status_code == 200, consent.text
    runtime = cimd_client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        stored = (await session.get(Client, client_id)).metadata_document
    assert {key: stored.get(key) for key in links} == {
        "logo_uri": None,
        "client_uri": None,
        "policy_uri": None,
        "tos_uri": "https://localhost/tos",  # https is kept
    }


async def test_failures_are_not_cached(
    cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    client_id = f"{base}/clients/gamma.json"
    documents.answers["/clients/gamma.json"] = Answer(503, b"down")
    assert isinstance(await browser_for(cimd_client).open(new_request(client_id).url()), Page)
    documents.put_json("/clients/gamma.json", document(client_id))
    consent = await browser_for(cimd_client).open(new_request(client_id).url())
    assert isinstance(consent, Page)
    assert consent.status_code == 200
    assert len(documents.requests) == 2


@pytest.fixture
async def production_client(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate
) -> AsyncIterator[httpx.AsyncClient]:
    """An auth service on a public issuer: it must never fetch from special-use addresses."""
    settings = make_settings(
        auth_issuer="https://auth.example.com",
        auth_upstream="github",
        github_client_id="id",
        github_client_secret="secret",
        auth_client_metadata_ca_bundle=certificates.ca_file,
    )
    async with serve_in_process(create_app(settings), base_url="https://auth.example.com") as client:
        yield client


SPECIAL_USE = [
    "https://localhost:{port}/c.json",
    "https://127.0.0.1:{port}/c.json",
    "https://[::1]:{port}/c.json",
    "https://10.1.2.3/c.json",
    "https://172.16.0.1/c.json",
    "https://192.168.1.1/c.json",
    "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/c.json",
    "https://224.0.0.1/c.json",
    "https://0.0.0.0/c.json",
    "https://[fe80::1]/c.json",
    "https://[fc00::1]/c.json",
    "https://[::ffff:127.0.0.1]:{port}/c.json",
    "https://[64:ff9b::7f00:1]/c.json",
    "https://[2002:7f00:1::]/c.json",
    "https://2130706433:{port}/c.json",
    "https://0x7f.1:{port}/c.json",
    "https://127.1:{port}/c.json",
    "https://017700000001:{port}/c.json",
]


@pytest.mark.parametrize("template", SPECIAL_USE)
async def test_special_use_address_is_never_fetched(
    template: str, production_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    client_id = template.format(port=base.rsplit(":", 1)[1])
    documents.put_json("/c.json", document(client_id))
    page = await browser_for(production_client).open(new_request(client_id).url())
    assert isinstance(page, Page)
    assert page.status_code == 400
    assert "will not fetch from" in page.text or "does not resolve" in page.text
    assert documents.requests == []


@pytest.mark.parametrize(
    "client_id",
    [
        "https://localhost/",
        "https://localhost",
        "https://user@localhost/c.json",
        "https://localhost/a/../c.json",
        "https://localhost/./c.json",
        "https://localhost/%2e%2e/c.json",
    ],
)
async def test_malformed_client_id_url_is_refused_without_a_request(
    client_id: str, cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, _ = host
    page = await browser_for(cimd_client).open(new_request(client_id).url())
    assert isinstance(page, Page)
    assert page.status_code == 400
    assert documents.requests == []


async def test_unknown_document_client_gets_invalid_client_at_the_token_endpoint(
    cimd_client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    _, base = host
    response = await cimd_client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "code_verifier": "v" * 43,
            "redirect_uri": CALLBACK,
            "client_id": f"{base}/missing.json",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
