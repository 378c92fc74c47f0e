"""`private_key_jwt` clients (RFC 7523 §2.2): registration of their keys (RFC 7591 §2 `jwks` / `jwks_uri`),
keys fetched from a `jwks_uri` (rotation, the SSRF rules), a DCR client redeeming a code with an assertion,
and what the metadata advertises (RFC 8414 §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..client_assertions import ClientKey, assertion_form
from ..conftest import ISSUER, RESOURCE_A, serve_in_process
from ..flow import CALLBACK, approve_and_sign_in, assert_oauth_error, browser_for, new_request
from ..operator_clients import key_client


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def host(certificates: ServerCertificate) -> Iterator[tuple[DocumentHost, str]]:
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        yield documents, server.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture
async def client(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as connection:
        yield connection


async def register(client: httpx.AsyncClient, **metadata: Any) -> httpx.Response:
    body = {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt", **metadata}
    return await client.post("/register", json=body)


async def test_metadata_advertises_private_key_jwt_and_asymmetric_algorithms_only(
    client: httpx.AsyncClient,
) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    for endpoint in ("token", "revocation", "introspection"):
        assert "private_key_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
        algorithms = metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert {"RS256", "PS256", "ES256", "EdDSA"} <= set(algorithms)
        assert not [alg for alg in algorithms if alg.startswith("HS") or alg.lower() == "none"]


async def test_dcr_registers_a_private_key_jwt_client_without_a_secret(client: httpx.AsyncClient) -> None:
    key = ClientKey()
    response = await register(client, jwks=key.jwks)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["jwks"] == key.jwks
    assert "client_secret" not in body


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ({}, "must register jwks or jwks_uri"),
        ({"jwks": ClientKey().jwks, "jwks_uri": "https://keys.example.com/jwks"}, "must not both"),
        ({"jwks_uri": "http://keys.example.com/jwks"}, "https"),
        ({"jwks_uri": "https://user:pw@keys.example.com/jwks"}, "user information"),
        ({"jwks_uri": "not a url"}, "jwks_uri"),
        ({"jwks": {"keys": []}}, "1 to 20 keys"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}}, "public keys only"),
        ({"jwks": "not a set"}, "jwks"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}}, "no usable public"),
        ({"token_endpoint_auth_method": "none", "jwks": ClientKey().jwks}, "private_key_jwt clients only"),
    ],
)
async def test_dcr_refuses_unusable_key_registrations(
    client: httpx.AsyncClient, metadata: dict[str, Any], complaint: str
) -> None:
    body = assert_oauth_error(await register(client, **metadata), "invalid_client_metadata")
    assert complaint in body["error_description"], body


async def test_dcr_refuses_private_key_material(client: httpx.AsyncClient) -> None:
    key = ClientKey()
    private_jwk = {**key.jwk, "d": "c2VjcmV0LXNjYWxhcg"}
    body = assert_oauth_error(await register(client, jwks={"keys": [private_jwk]}), "invalid_client_metadata")
    assert "private" in body["error_description"]


async def test_a_dcr_private_key_jwt_client_redeems_its_code_with_an_assertion(
    client: httpx.AsyncClient,
) -> None:
    key = ClientKey()
    registered = (
        await register(client, jwks=key.jwks, grant_types=["authorization_code", "refresh_token"])
    ).json()
    client_id = registered["client_id"]
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(client), request.url(), "key-holder")
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "resource": RESOURCE_A,
    }
    # Without its assertion (a public client's request) the code stays unredeemed.
    refused = await client.post("/token", data={**form, "client_id": client_id})
    assert_oauth_error(refused, "invalid_client", 401)
    redeemed = await client.post("/token", data={**form, **assertion_form(key.assertion(client_id, ISSUER))})
    assert redeemed.status_code == 200, redeemed.text
    tokens = redeemed.json()
    refreshed = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            **assertion_form(key.assertion(client_id, ISSUER)),
        },
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_keys_at_a_jwks_uri_are_fetched_and_a_rotated_key_is_learnt(
    client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    old, new = ClientKey(), ClientKey()
    documents.put_json("/jwks.json", old.jwks, **{"cache-control": "max-age=3600"})
    client_id = await key_client(
        client, jwks_uri=f"{base}/jwks.json", allowed_resources=[RESOURCE_A], allowed_scopes=["mcp:tools"]
    )

    async def token_with(key: ClientKey) -> httpx.Response:
        data = {"grant_type": "client_credentials", "resource": RESOURCE_A}
        return await client.post("/token", data={**data, **assertion_form(key.assertion(client_id, ISSUER))})

    assert (await token_with(old)).status_code == 200
    assert (await token_with(old)).status_code == 200
    assert documents.requests.count("/jwks.json") == 1  # cached, as its max-age says
    # The client rotates: its new kid is unknown to us, so the set is fetched again at once.
    documents.put_json("/jwks.json", {"keys": [old.jwk, new.jwk]})
    response = await token_with(new)
    assert response.status_code == 200, response.text
    assert documents.requests.count("/jwks.json") == 2
    # Unknown kids do not make us fetch again and again: at most once every 10 s.
    for _ in range(3):
        assert_oauth_error(await token_with(ClientKey()), "invalid_client", 401)
    assert documents.requests.count("/jwks.json") == 2


async def test_a_jwks_uri_that_cannot_be_fetched_is_invalid_client_not_a_500(
    client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    documents, base = host
    documents.put_json("/huge.json", {"keys": [], "padding": "x" * 100_000})
    for uri in (f"{base}/missing.json", f"{base}/huge.json", "https://169.254.169.254/latest/keys"):
        key = ClientKey()
        client_id = await key_client(
            client, jwks_uri=uri, allowed_resources=[RESOURCE_A], allowed_scopes=["mcp:tools"]
        )
        data = {"grant_type": "client_credentials", "resource": RESOURCE_A}
        response = await client.post(
            "/token", data={**data, **assertion_form(key.assertion(client_id, ISSUER))}
        )
        assert_oauth_error(response, "invalid_client", 401)
    assert "/huge.json" in documents.requests


def cimd_document(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Keyed document client",
        "redirect_uris": [CALLBACK],
        **extra,
    }


async def test_a_metadata_document_client_with_only_private_key_jwt_authenticates_with_its_keys(
    client: httpx.AsyncClient, host: tuple[DocumentHost, str]
) -> None:
    """draft-ietf-oauth-client-id-metadata-document §4.1: no shared secrets; private_key_jwt with the
    client's keys in the document (here at a jwks_uri beside it) makes a document client confidential."""
    documents, base = host
    key = ClientKey()
    client_id = f"{base}/keyed.json"
    documents.put_json("/keys.json", key.jwks)
    documents.put_json(
        "/keyed.json",
        cimd_document(client_id, token_endpoint_auth_method="private_key_jwt", jwks_uri=f"{base}/keys.json"),
    )
    request = new_request(client_id)
    answer = await approve_and_sign_in(browser_for(client), request.url(), "document-key-holder")
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        "resource": RESOURCE_A,
    }
    assert_oauth_error(
        await client.post("/token", data={**form, "client_id": client_id}), "invalid_client", 401
    )
    assertion = ClientKey().assertion(client_id, ISSUER)  # a key the document does not name
    assert_oauth_error(
        await client.post("/token", data={**form, **assertion_form(assertion)}), "invalid_client", 401
    )
    redeemed = await client.post("/token", data={**form, **assertion_form(key.assertion(client_id, ISSUER))})
    assert redeemed.status_code == 200, redeemed.text


PRIVATE_KEY_JWT = {"token_endpoint_auth_method": "private_key_jwt"}


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (PRIVATE_KEY_JWT, "names jwks_uri or jwks"),
        ({**PRIVATE_KEY_JWT, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "public keys only"),
        ({**PRIVATE_KEY_JWT, "jwks_uri": "http://keys.example.com/k"}, "https"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "must be none or private_key_jwt"),
    ],
)
async def test_a_metadata_document_without_usable_keys_is_refused(
    client: httpx.AsyncClient, host: tuple[DocumentHost, str], extra: dict[str, Any], complaint: str
) -> None:
    documents, base = host
    client_id = f"{base}/unkeyed.json"
    documents.put_json("/unkeyed.json", cimd_document(client_id, **extra))
    response = await client.get(new_request(client_id).url())
    assert response.status_code == 400, response.text
    assert complaint in response.text
