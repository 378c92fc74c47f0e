"""The cache of client records (AUTH_CLIENT_CACHE_SECONDS, store/client_cache.py): bounded staleness.

A change the operator makes from another process (`mcp-auth clients add --update`, `clients remove`,
run here as the real command) is seen by the next request once the bound has passed; a change made
through this process is seen at once. Time moves through the service's one clock (clock.py).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import delete

from mcp_auth_server import clock
from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import Client
from mcp_auth_server.settings import AuthSettings
from mcp_testing.processes import venv_script

from ..conftest import RESOURCE_A, TEST_SECRET, serve_in_process
from ..flow import CALLBACK, approve_and_sign_in, browser_for, new_request, redeem
from ..operator_clients import machine_client, runtime_of

BOUND = 5
OTHER_CALLBACK = "http://127.0.0.1:33418/elsewhere"  # loopback ports may vary (RFC 8252 §7.3): the path


class MovableTime:
    """Stands in for `clock.time`: the real time, moved on by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def moved_time(monkeypatch: pytest.MonkeyPatch) -> MovableTime:
    movable = MovableTime()
    monkeypatch.setattr(clock, "time", movable)
    return movable


@pytest.fixture
async def service(make_settings: Callable[..., AuthSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings(auth_client_cache_seconds=BOUND))) as client:
        yield client


def operator(client: httpx.AsyncClient, *args: str, **env: str) -> str:
    """`mcp-auth` run as the operator runs it: another process on the same database."""
    result = subprocess.run(
        [venv_script("mcp-auth"), *args],
        env={
            "AUTH_DATABASE_URL": runtime_of(client).settings.database_url,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "PATH": "/usr/bin:/bin",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def client_credentials(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/token", auth=(client_id, secret), data={"grant_type": "client_credentials", "resource": RESOURCE_A}
    )


async def test_a_secret_rotated_by_another_process_is_honoured_within_the_bound(
    service: httpx.AsyncClient, moved_time: MovableTime
) -> None:
    client_id, old = await machine_client(service, [RESOURCE_A], ["mcp:tools"])
    assert (await client_credentials(service, client_id, old)).status_code == 200  # now cached
    new = "rotated-secret-" + "x" * 32
    operator(
        service,
        *("clients", "add", "--machine", "--update", "--client-id", client_id, "--name", "CI job"),
        *("--resource", RESOURCE_A, "--scope", "mcp:tools", "--secret-env", "NEW_SECRET"),
        NEW_SECRET=new,
    )
    moved_time.offset += BOUND
    refused = await client_credentials(service, client_id, old)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert (await client_credentials(service, client_id, new)).status_code == 200


async def test_a_client_removed_by_another_process_is_unknown_within_the_bound(
    service: httpx.AsyncClient, moved_time: MovableTime
) -> None:
    client_id, secret = await machine_client(service, [RESOURCE_A], ["mcp:tools"])
    assert (await client_credentials(service, client_id, secret)).status_code == 200
    operator(service, "clients", "remove", client_id)
    moved_time.offset += BOUND
    refused = await client_credentials(service, client_id, secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


async def authorize(client: httpx.AsyncClient, client_id: str, redirect_uri: str) -> httpx.Response:
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"}
    return await client.get("/authorize", params=params)


async def test_redirect_uris_changed_by_another_process_apply_within_the_bound(
    service: httpx.AsyncClient, moved_time: MovableTime
) -> None:
    created = operator(
        service,
        *("clients", "add", "--public", "--name", "Desktop app", "--redirect-uri", CALLBACK, "--json"),
    )
    client_id = str(json.loads(created)["client_id"])
    first, second = new_request(client_id), new_request(client_id)
    first_code = (await approve_and_sign_in(browser_for(service), first.url(), "desk"))["code"]
    second_code = (await approve_and_sign_in(browser_for(service), second.url(), "desk"))["code"]
    assert (await redeem(service, first, first_code)).status_code == 200  # the client's record is cached
    operator(
        service,
        *("clients", "add", "--public", "--update", "--client-id", client_id, "--name", "Desktop app"),
        *("--redirect-uri", OTHER_CALLBACK),
    )
    # /authorize reads the client afresh: never redirected to a URI no longer registered, at once.
    assert (await authorize(service, client_id, CALLBACK)).status_code == 400
    assert (await authorize(service, client_id, OTHER_CALLBACK)).status_code == 302
    moved_time.offset += BOUND
    refused = await redeem(service, second, second_code)  # the code's redirect URI is checked again
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_a_removal_made_in_this_process_is_seen_at_once(service: httpx.AsyncClient) -> None:
    client_id, secret = await machine_client(service, [RESOURCE_A], ["mcp:tools"])
    assert (await client_credentials(service, client_id, secret)).status_code == 200
    async with runtime_of(service).sessions() as session:
        await session.execute(delete(Client).where(Client.client_id == client_id))
        await session.commit()
    refused = await client_credentials(service, client_id, secret)  # no time has passed
    assert refused.status_code == 401


async def test_a_change_flushed_in_this_process_is_seen_at_once(service: httpx.AsyncClient) -> None:
    client_id, secret = await machine_client(service, [RESOURCE_A], ["mcp:tools"])
    assert (await client_credentials(service, client_id, secret)).status_code == 200
    async with runtime_of(service).sessions() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        client.allowed_resources = []  # the operator withdrew the resource
        await session.commit()
    refused = await client_credentials(service, client_id, secret)
    assert refused.status_code == 400
    assert refused.json()["error"] in ("invalid_target", "unauthorized_client")


async def test_without_a_cache_a_change_by_another_process_is_seen_at_once(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_client_cache_seconds=0))) as service:
        client_id, secret = await machine_client(service, [RESOURCE_A], ["mcp:tools"])
        assert (await client_credentials(service, client_id, secret)).status_code == 200
        operator(service, "clients", "remove", client_id)
        assert (await client_credentials(service, client_id, secret)).status_code == 401
