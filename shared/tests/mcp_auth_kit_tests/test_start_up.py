"""Finding 4 of issue 14: a server pointed at the wrong issuer says so at once; an unreachable one says why.

Reproduced first: with the issuer written with a trailing slash (or `localhost` for `127.0.0.1`), the
server started anyway, stayed unready and refused good tokens as "unknown signing key"; an
unreachable issuer was logged without its URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
from starlette.types import ASGIApp, Message

from mcp_auth_kit import protect

from .conftest import IssuerStandIn, notes_server, serve_protected, tool_call, unused_port

TokenFor = Callable[..., str]


async def lifespan_startup(app: ASGIApp) -> Message:
    """Drive the ASGI lifespan protocol as uvicorn does; the first message the app sends back."""
    sent: list[Message] = []
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent[0]


def wrongly_written(issuer_url: str) -> list[str]:
    return [issuer_url + "/", issuer_url.replace("127.0.0.1", "localhost")]


@pytest.mark.parametrize("variant", [0, 1], ids=["trailing-slash", "localhost"])
async def test_an_issuer_that_names_another_issuer_stops_start_up_with_one_line(
    issuer: IssuerStandIn, variant: int
) -> None:
    configured = wrongly_written(issuer.url)[variant]
    app = protect(notes_server().mcp, resource_url="http://127.0.0.1:9/mcp", issuer=configured)
    message = await lifespan_startup(app)
    assert message["type"] == "lifespan.startup.failed"
    line = message["message"]
    assert "\n" not in line
    metadata = configured.rstrip("/") + "/.well-known/oauth-authorization-server"
    assert line == (
        f"issuer mismatch: configured {configured!r}, but {metadata} names {issuer.url!r}; "
        "set the issuer to exactly the string the auth service publishes"
    )


async def test_the_right_issuer_starts(issuer: IssuerStandIn) -> None:
    app = protect(notes_server().mcp, resource_url="http://127.0.0.1:9/mcp", issuer=issuer.url)
    assert (await lifespan_startup(app))["type"] == "lifespan.startup.complete"


async def test_an_unreachable_issuer_is_retried_and_readyz_says_why(
    issuer: IssuerStandIn, token_for: TokenFor, caplog: pytest.LogCaptureFixture
) -> None:
    missing = f"http://127.0.0.1:{unused_port()}"
    caplog.set_level(logging.WARNING, logger="mcp_auth_kit")
    async with serve_protected(missing) as served, httpx.AsyncClient() as client:
        ready = await client.get(f"{served.url}/readyz")
        response = await client.post(
            served.resource_url,
            json=tool_call("list_notes"),
            headers={"Accept": "application/json", "Authorization": f"Bearer {token_for(served)}"},
        )
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert reason.startswith(f"cannot fetch {missing}/.well-known/oauth-authorization-server: ConnectError")
    # Not "unknown signing key" (a 401 would send the client back through authorization for nothing).
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert served.notes.executed == []
    kit_lines = [record.getMessage() for record in caplog.records if record.name.startswith("mcp_auth_kit")]
    assert kit_lines
    assert all(missing in line for line in kit_lines)


async def test_an_issuer_that_comes_up_later_is_picked_up(issuer: IssuerStandIn, token_for: TokenFor) -> None:
    issuer.down = True
    async with serve_protected(issuer.url) as served, httpx.AsyncClient() as client:
        down = await client.get(f"{served.url}/readyz")
        issuer.down = False
        # The background retry (1 s after start-up) loads the keys without any request asking for them.
        for _ in range(50):
            if issuer.jwks_hits:
                break
            await asyncio.sleep(0.1)
        ready = await client.get(f"{served.url}/readyz")
        response = await client.post(
            served.resource_url,
            json=tool_call("list_notes"),
            headers={"Accept": "application/json", "Authorization": f"Bearer {token_for(served)}"},
        )
    assert down.status_code == 503
    assert "HTTP 503" in down.json()["reason"]
    assert issuer.jwks_hits >= 1
    assert ready.json() == {"status": "ready"}
    assert response.status_code == 200
