"""The round-robin proxy forwards faithfully: turns, headers, streamed bodies both ways, SSE, failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mcp_testing.background_server import BackgroundServer
from mcp_testing.processes import free_port
from mcp_testing.round_robin_proxy import RoundRobinProxy


class Replica:
    """A small upstream that says who it is and what it received."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()  # lets /events send its second event
        self.stream_closed = threading.Event()
        app = Starlette(
            routes=[
                Route("/echo", self.echo, methods=["GET", "POST", "PUT"]),
                Route("/challenge", self.challenge),
                Route("/redirect", self.redirect),
                Route("/events", self.events),
            ]
        )
        self.server = BackgroundServer(app)

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "replica": self.name,
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "host": request.headers.get("host"),
                "header_names": sorted(request.headers.keys()),
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
        )

    async def challenge(self, _request: Request) -> Response:
        return JSONResponse(
            {"error": "invalid_token"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token", scope="a b"'},
        )

    async def redirect(self, _request: Request) -> Response:
        response = Response(status_code=302, headers={"Location": "/elsewhere?x=1"})
        response.set_cookie("first", "1", httponly=True)
        response.set_cookie("second", "2", samesite="strict")
        return response

    async def events(self, _request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            try:
                yield f"event: hello\ndata: {self.name}\n\n".encode()
                deadline = time.monotonic() + 5
                while not self.release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                yield b"data: released\n\n" if self.release.is_set() else b"data: timed-out\n\n"
            finally:
                self.stream_closed.set()

        return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[Replica]]:
    started = [Replica("a"), Replica("b")]
    for replica in started:
        replica.server.start()
    yield started
    for replica in started:
        replica.server.stop()


@pytest.fixture
def proxy(replicas: list[Replica]) -> Iterator[RoundRobinProxy]:
    for replica in replicas:
        replica.release.clear()
        replica.stream_closed.clear()
    with RoundRobinProxy([replica.server.base_url for replica in replicas]) as running:
        yield running


async def test_requests_take_turns_and_are_counted(proxy: RoundRobinProxy, replicas: list[Replica]) -> None:
    async with httpx.AsyncClient(base_url=proxy.url) as http:
        served = [(await http.get("/echo")).json()["replica"] for _ in range(5)]
    assert served == ["a", "b", "a", "b", "a"]
    assert proxy.counts == {replicas[0].server.base_url: 3, replicas[1].server.base_url: 2}
    assert [(f.method, f.path, f.status) for f in proxy.forwarded] == [("GET", "/echo", 200)] * 5


async def test_the_clients_host_path_and_query_reach_the_upstream(proxy: RoundRobinProxy) -> None:
    async with httpx.AsyncClient(base_url=proxy.url) as http:
        default = (await http.get("/echo", params={"q": "a b", "r": "/x"})).json()
        explicit = (await http.get("/echo", headers={"Host": "mcp.example.test:8443"})).json()
    assert default["host"] == proxy.url.removeprefix("http://")
    assert default["query"] == "q=a+b&r=%2Fx"
    assert explicit["host"] == "mcp.example.test:8443"
    # The proxy adds nothing of its own (no user agent, no accept-encoding the client did not send).
    assert "user-agent" not in (await _raw_get(proxy.url, "/echo"))["header_names"]


async def _raw_get(base_url: str, path: str) -> dict[str, Any]:
    """A GET with only the headers HTTP/1.1 requires, through a bare connection."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    result: dict[str, Any] = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    return result


async def test_status_challenges_redirects_and_repeated_cookies_pass_through(proxy: RoundRobinProxy) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, follow_redirects=False) as http:
        challenge = await http.get("/challenge")
        redirect = await http.get("/redirect")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == 'Bearer error="invalid_token", scope="a b"'
    assert challenge.json() == {"error": "invalid_token"}
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/elsewhere?x=1"
    cookies = redirect.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("first=1;")
    assert "HttpOnly" in cookies[0]
    assert cookies[1].startswith("second=2;")
    assert "SameSite=strict" in cookies[1]


async def test_request_bodies_stream_through_intact(proxy: RoundRobinProxy) -> None:
    chunks = [bytes([i]) * 65_536 for i in range(16)]  # 1 MiB, sent chunked

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async with httpx.AsyncClient(base_url=proxy.url) as http:
        streamed = (await http.post("/echo", content=body())).json()
        sized = (await http.put("/echo", json={"hello": "world"})).json()
    assert streamed["method"] == "POST"
    assert streamed["body_length"] == 16 * 65_536
    assert streamed["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert sized["method"] == "PUT"
    assert sized["body_length"] == len(b'{"hello":"world"}')


async def test_server_sent_events_arrive_as_they_are_sent(
    proxy: RoundRobinProxy, replicas: list[Replica]
) -> None:
    async with (
        httpx.AsyncClient(base_url=proxy.url, timeout=10) as http,
        http.stream("GET", "/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert await anext(lines) == "event: hello"
        assert await anext(lines) == "data: a"
        # The upstream holds the second event back until the first has reached us: no buffering.
        replicas[0].release.set()
        rest = [line async for line in lines]
    assert "data: released" in rest


async def test_a_client_leaving_a_stream_closes_it_upstream(
    proxy: RoundRobinProxy, replicas: list[Replica]
) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
        async with http.stream("GET", "/events") as response:
            assert await anext(response.aiter_lines()) == "event: hello"
        # The stream was abandoned before its second event; the upstream generator must be closed.
        assert await asyncio.to_thread(replicas[0].stream_closed.wait, 3)
        assert (await http.get("/echo")).status_code == 200  # and the proxy carries on


async def test_an_unreachable_upstream_is_a_502_and_the_next_turn_goes_elsewhere(
    replicas: list[Replica],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    live = replicas[0].server.base_url
    with RoundRobinProxy([dead, live]) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            failed = await http.get("/echo")
            served = await http.get("/echo")
    assert failed.status_code == 502
    assert failed.json()["upstream"] == dead
    assert served.json()["replica"] == "a"
    assert proxy.counts == {dead: 1, live: 1}
    assert [f.status for f in proxy.forwarded] == [502, 200]


def test_a_proxy_needs_an_upstream() -> None:
    with pytest.raises(ValueError, match="at least one upstream"):
        RoundRobinProxy([])
