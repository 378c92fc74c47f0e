"""A round-robin reverse proxy on loopback, so tests can put several replicas of a service behind one URL.

Each request goes to the next upstream in turn, as a load balancer without session affinity would send
it: a multi-replica test then proves that no replica relies on state another one holds in memory.
Bodies stream both ways (JSON and Server-Sent Events alike), the client's `Host` header is kept (the
services check it against their public URL), and every header but the hop-by-hop ones (RFC 9110 §7.6.1)
passes through unchanged, repeated ones (`Set-Cookie`) included.

    with RoundRobinProxy(["http://127.0.0.1:9001", "http://127.0.0.1:9002"]) as proxy:
        httpx.get(proxy.url + "/readyz")
        assert proxy.counts == {"http://127.0.0.1:9001": 1, "http://127.0.0.1:9002": 0}
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio
import httpx
from starlette.types import Message, Receive, Scope, Send

from mcp_testing.background_server import BackgroundServer, ServedInBackground

__all__ = ["Forwarded", "RoundRobinProxy"]

log = logging.getLogger(__name__)

# RFC 9110 §7.6.1: meaningful for one connection only; a proxy must not forward them.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Streams (SSE) may stay quiet for long; only connecting is bounded.
UPSTREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)


@dataclass(frozen=True)
class Forwarded:
    """One request the proxy passed on, and the status the upstream answered (502: it was unreachable)."""

    upstream: str
    method: str
    path: str
    status: int


class RoundRobinProxy(ServedInBackground):
    """An HTTP reverse proxy on a loopback port of its own; `url` is its base URL once started."""

    def __init__(self, upstreams: Sequence[str], host: str = "127.0.0.1", port: int = 0) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = [upstream.rstrip("/") for upstream in upstreams]
        self.forwarded: list[Forwarded] = []  # appended on the server's thread, read by tests
        self._turns = itertools.cycle(self.upstreams)
        self._client: httpx.AsyncClient | None = None
        self._server = BackgroundServer(self, host=host, port=port, lifespan="on")

    @property
    def url(self) -> str:
        return self._server.base_url

    @property
    def counts(self) -> dict[str, int]:
        """Requests forwarded to each upstream so far (unreachable attempts included)."""
        tally = Counter(request.upstream for request in self.forwarded)
        return {upstream: tally[upstream] for upstream in self.upstreams}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application the proxy's server runs."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # The client belongs to the server thread's event loop, so it is made and closed there.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, trust_env=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "lifespan startup has run"
        upstream = next(self._turns)
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = upstream + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = _end_to_end(scope["headers"])
        has_body = any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])
        body_sent = anyio.Event()
        # httpx.Request, not client.build_request: the client's default headers must not be added.
        request = httpx.Request(
            scope["method"],
            target,
            headers=headers,
            content=_request_body(receive, body_sent) if has_body else None,
        )
        if not has_body:
            body_sent.set()
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("upstream %s failed: %r", upstream, exc)
            self.forwarded.append(Forwarded(upstream, scope["method"], scope["path"], 502))
            await _bad_gateway(send, upstream, exc)
            return
        self.forwarded.append(Forwarded(upstream, scope["method"], scope["path"], response.status_code))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _end_to_end(response.headers.raw),
                }
            )
            await _relay_until_disconnect(response, receive, send, body_sent)
        finally:
            await response.aclose()


def _end_to_end(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers without hop-by-hop ones, including those the `Connection` header names."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP | named]


async def _request_body(receive: Receive, done: anyio.Event) -> AsyncIterator[bytes]:
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        done.set()


async def _relay_until_disconnect(
    response: httpx.Response, receive: Receive, send: Send, body_sent: anyio.Event
) -> None:
    """Stream the upstream's body chunk by chunk; stop (closing the upstream) if the client leaves."""
    async with anyio.create_task_group() as tasks:

        async def watch_for_disconnect() -> None:
            await body_sent.wait()  # until then, receive() belongs to the request body
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch_for_disconnect)
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        tasks.cancel_scope.cancel()


async def _bad_gateway(send: Send, upstream: str, exc: Exception) -> None:
    body = json.dumps({"error": "bad_gateway", "upstream": upstream, "detail": repr(exc)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
