"""A bound on the request head (request line and headers) with uvicorn's fast httptools parser.

httptools keeps a request's head in memory until it is complete, with no limit: one connection sending a
header without end grew the process by 100 MB per 100 MB sent, and a few such connections exhaust a
512 MiB container. h11 has a limit but parses several times slower, so the hot path keeps httptools and
counts here instead: bytes received while a request's head is incomplete are counted, and past
AUTH_MAX_HEADER_BYTES the connection is answered 431 (RFC 6585 §5) and closed. At most the limit plus one
read of the socket is ever held. Body bytes are never counted (they are bounded by web/body_limits.py).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REFUSAL = b"request header fields too large"
DEFAULT_MAX_HEAD_BYTES = 64 * 1024


class BoundedHeads(HttpToolsProtocol):
    """uvicorn's httptools protocol (`http=BoundedHeads`), refusing a request head larger than uvicorn's
    `h11_max_incomplete_event_size`: the same limit h11 applies, and an option every worker process gets
    (a class built per limit could not be sent to `--workers` processes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._head_bytes = 0
        self._in_head = True  # a connection starts with a request's head

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)  # may complete the head (or begin the next one, counting afresh)
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _refuse(self) -> None:
        if self.cycle is None or self.cycle.response_complete:  # not in the middle of another response
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(REFUSAL), REFUSAL)
            )
        self.transport.close()
