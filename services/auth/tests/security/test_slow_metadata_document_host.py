"""A slow, hostile client-metadata-document host must not take the service down (issue 12, finding 1).

The attack: a TLS host that answers with its headers and then one byte every 2 s, named as
`client_id=https://host/slow/N` in 22 concurrent `/token` requests — more than the database pool's
20 connections. Before the fix each request held a pooled connection while it fetched, with only a
per-read timeout: `/readyz` said "database unavailable" and every other client got 503.

Now each fetch has one overall deadline (3 s), holds no database connection, at most 4 run at once
per host, and the failing host is refused at once afterwards.
"""

from __future__ import annotations

import asyncio
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

from ..conftest import RESOURCE_A, serve_in_process
from ..flow import CALLBACK
from ..operator_clients import machine_client

ATTACKERS = 22  # more than the pool's 10 connections + 10 overflow
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
        for n in range(ATTACKERS):
            body = json.dumps({"client_id": f"{base}/slow/{n}", "redirect_uris": [CALLBACK]}).encode()
            documents.answers[f"/slow/{n}"] = Answer(
                body=body, headers={"content-type": "application/json"}, dribble_seconds=2.0
            )
        yield documents, base


def code_request(client_id: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": "c",
        "code_verifier": "v" * 43,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
    }


async def timed_post(
    client: httpx.AsyncClient, url: str, data: dict[str, str]
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(url, data=data)
    return response, time.monotonic() - started


async def test_a_slow_document_host_named_by_many_token_requests_does_not_take_the_service_down(
    make_settings: Callable[..., AuthSettings],
    certificates: ServerCertificate,
    slow_host: tuple[DocumentHost, str],
) -> None:
    documents, base = slow_host
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as client:
        machine_id, machine_secret = await machine_client(client, [RESOURCE_A], ["mcp:tools"])
        attacks = [
            asyncio.create_task(timed_post(client, "/token", code_request(f"{base}/slow/{n}")))
            for n in range(ATTACKERS)
        ]
        await asyncio.sleep(0.5)  # every attacking request is now waiting on the slow host

        # Meanwhile the service answers everyone else, and says it is ready.
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        issued = await client.post(
            "/token",
            data={"grant_type": "client_credentials", "resource": RESOURCE_A},
            auth=(machine_id, machine_secret),
        )
        assert issued.status_code == 200, issued.text
        registered = await client.post(
            "/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
        )
        assert registered.status_code == 201, registered.text
        assert not any(attack.done() for attack in attacks)  # all of that while the attack was running

        for response, seconds in await asyncio.gather(*attacks):
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "invalid_client"
            assert seconds < DEADLINE + MARGIN, seconds
        # At most 4 fetches from one host at a time: the others waited, and gave up at the deadline.
        assert len(documents.requests) <= 4, documents.requests

        # The failing host is remembered: the next request naming it is refused at once, unfetched.
        asked = len(documents.requests)
        response, seconds = await timed_post(client, "/token", code_request(f"{base}/slow/0"))
        assert response.status_code == 401
        assert "failed recently" in response.json()["error_description"]
        assert len(documents.requests) == asked
        assert seconds < DEADLINE


async def test_concurrent_requests_for_one_document_share_one_fetch(
    make_settings: Callable[..., AuthSettings],
    certificates: ServerCertificate,
    slow_host: tuple[DocumentHost, str],
) -> None:
    documents, base = slow_host
    client_id = f"{base}/shared.json"
    documents.put_json("/shared.json", {"client_id": client_id, "redirect_uris": [CALLBACK]})
    documents.answers["/shared.json"].delay_seconds = 0.5
    app = create_app(make_settings(auth_client_metadata_ca_bundle=certificates.ca_file))
    async with serve_in_process(app) as client:
        answers = await asyncio.gather(
            *(client.post("/token", data=code_request(client_id)) for _ in range(10))
        )
    # The document was acceptable: each request reached the grant, which refused the made-up code.
    assert {answer.json()["error"] for answer in answers} == {"invalid_grant"}
    assert documents.requests == ["/shared.json"]
