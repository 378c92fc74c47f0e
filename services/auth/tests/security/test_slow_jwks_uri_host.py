"""A slow, hostile `jwks_uri` host must not hold `/token` requests for ever (issue 16, SSRF bounds).

The attack: anyone registers (RFC 7591, anonymously) `private_key_jwt` clients whose `jwks_uri` is a
host that answers its headers and then one byte every 2 s. Each `/token` request with a client assertion
for such a client makes this server fetch that JWK Set. With only httpx's per-read timeout the fetch
never ends: every attacking request hangs (holding a worker slot and an outbound connection), as many
as the attacker sends, across as many registered clients as it likes.

The fetch of a client's `jwks_uri` must get the same bounds as a client metadata document's
(oauth/outbound_fetches.py): one overall deadline, at most 4 fetches per host at once, and a failing
host refused at once afterwards.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import Answer, DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..client_assertions import ClientKey, assertion_form
from ..conftest import ISSUER, RESOURCE_A, serve_in_process
from ..flow import CALLBACK
from ..operator_clients import key_client

ATTACKERS = 8
DEADLINE = 3.0
MARGIN = 3.0  # a shared, loaded CI machine: scheduling, not the fetch, makes up this part


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def slow_host(certificates: ServerCertificate) -> Iterator[tuple[DocumentHost, str]]:
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        base = server.base_url.replace("127.0.0.1", "localhost")
        body = b'{"keys": [' + b" " * 4000 + b"]}"
        for n in range(ATTACKERS):
            documents.answers[f"/slow/{n}.json"] = Answer(
                body=body, headers={"content-type": "application/json"}, dribble_seconds=2.0
            )
        yield documents, base


async def timed_post(
    client: httpx.AsyncClient, url: str, data: dict[str, str]
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(url, data=data)
    return response, time.monotonic() - started


async def test_a_slow_jwks_uri_host_cannot_hold_token_requests_for_ever(
    make_settings: Callable[..., AuthSettings],
    certificates: ServerCertificate,
    slow_host: tuple[DocumentHost, str],
) -> None:
    documents, base = slow_host
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as client:
        attacks = []
        for n in range(ATTACKERS):
            registered = await client.post(
                "/register",
                json={
                    "redirect_uris": [CALLBACK],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": f"{base}/slow/{n}.json",
                },
            )
            assert registered.status_code == 201, registered.text
            client_id = registered.json()["client_id"]
            form = {
                "grant_type": "authorization_code",
                "code": "c",
                "code_verifier": "v" * 43,
                "redirect_uri": CALLBACK,
                **assertion_form(ClientKey().assertion(client_id, ISSUER)),
            }
            attacks.append(asyncio.create_task(timed_post(client, "/token", form)))

        done, pending = await asyncio.wait(attacks, timeout=DEADLINE + MARGIN + 4)
        for task in pending:
            task.cancel()
        assert not pending, f"{len(pending)} of {ATTACKERS} token requests still waiting on the slow host"
        for task in done:
            response, seconds = task.result()
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client"
            assert seconds < DEADLINE + MARGIN, seconds
        # At most 4 fetches from one host at a time: the others waited, and gave up at the deadline.
        assert len(documents.requests) <= 4, documents.requests

        # The failing host is remembered: one more client naming it is refused at once, unfetched.
        asked = len(documents.requests)
        registered = await client.post(
            "/register",
            json={
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": f"{base}/slow/0.json",
            },
        )
        client_id = registered.json()["client_id"]
        form = {
            "grant_type": "client_credentials",
            **assertion_form(ClientKey().assertion(client_id, ISSUER)),
        }
        response, seconds = await timed_post(client, "/token", form)
        assert response.status_code == 401, response.text
        assert len(documents.requests) == asked
        assert seconds < DEADLINE


async def test_a_compressed_jwk_set_is_held_to_the_size_limit_once_decompressed(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate
) -> None:
    """A gzip body of a few KB inflates to megabytes: the 64 KB limit on a JWK Set counts what is parsed,
    not what crossed the wire (a compression bomb per fetch, 32 fetches at once, is gigabytes)."""
    documents = DocumentHost()
    key = ClientKey()
    bomb = json.dumps({**key.jwks, "padding": " " * 5_000_000}).encode()
    documents.answers["/bomb.json"] = Answer(
        body=gzip.compress(bomb), headers={"content-type": "application/json", "content-encoding": "gzip"}
    )
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    with BackgroundServer(documents, tls=certificates) as server:
        base = server.base_url.replace("127.0.0.1", "localhost")
        async with serve_in_process(app) as client:
            client_id = await key_client(
                client,
                jwks_uri=f"{base}/bomb.json",
                allowed_resources=[RESOURCE_A],
                allowed_scopes=["mcp:tools"],
            )
            form = {"grant_type": "client_credentials", "resource": RESOURCE_A}
            response = await client.post(
                "/token", data={**form, **assertion_form(key.assertion(client_id, ISSUER))}
            )
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client"
            assert "/bomb.json" in documents.requests


async def test_a_deeply_nested_jwk_set_is_invalid_client_not_a_500(
    make_settings: Callable[..., AuthSettings], certificates: ServerCertificate
) -> None:
    """Anyone may name the `jwks_uri`, so its body is hostile input: 30,000 nested arrays (60 KB, within
    the size limit) made json.loads raise RecursionError, which no one caught: a 500 at /token."""
    documents = DocumentHost()
    documents.answers["/nested.json"] = Answer(
        body=b"[" * 30_000 + b"]" * 30_000, headers={"content-type": "application/json"}
    )
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    with BackgroundServer(documents, tls=certificates) as server:
        base = server.base_url.replace("127.0.0.1", "localhost")
        async with serve_in_process(app) as client:
            client_id = await key_client(
                client,
                jwks_uri=f"{base}/nested.json",
                allowed_resources=[RESOURCE_A],
                allowed_scopes=["mcp:tools"],
            )
            form = {"grant_type": "client_credentials", "resource": RESOURCE_A}
            response = await client.post(
                "/token", data={**form, **assertion_form(ClientKey().assertion(client_id, ISSUER))}
            )
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client"
