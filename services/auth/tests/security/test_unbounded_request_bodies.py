"""Request bodies are bounded while they stream (issue 12, finding 3).

The attack: a 100 MB `Transfer-Encoding: chunked` POST to /token or /register grew the process from
137 MB to 333 MB before the 400, because the size check read only `Content-Length`. Now the body is
counted as it arrives (web/body_limits.py): 413 after at most AUTH_MAX_BODY_BYTES, memory flat.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcp_testing.processes import ServiceProcess

from ..auth_process import dev_auth_service

ATTACK_BYTES = 100 * 1024 * 1024
CHUNK = b"a" * (64 * 1024)
RSS_GROWTH_LIMIT = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def auth_service(migrated_database: str) -> Iterator[ServiceProcess]:
    with dev_auth_service(migrated_database) as service:
        yield service.process


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chunked_attack(service: ServiceProcess, path: str, content_type: str) -> tuple[bytes, int, int]:
    """POST up to 100 MB in 64 KiB chunks, stopping once the server answers: (answer, sent, peak RSS)."""
    sent, peak = 0, rss(service.pid)
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as connection:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode())
        try:
            while sent < ATTACK_BYTES:
                if select.select([connection], [], [], 0)[0]:
                    break  # answered: stop sending
                connection.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                sent += len(CHUNK)
                if sent % (4 * 1024 * 1024) == 0:
                    peak = max(peak, rss(service.pid))
            else:
                connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering; the answer is still to be read
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, sent, max(peak, rss(service.pid))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/token", "application/x-www-form-urlencoded"), ("/register", "application/json")],
)
def test_a_100_mb_chunked_body_is_refused_with_413_without_growing_memory(
    auth_service: ServiceProcess, path: str, content_type: str
) -> None:
    before = rss(auth_service.pid)
    answer, sent, peak = chunked_attack(auth_service, path, content_type)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:500]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"] == "invalid_request"
    assert sent < ATTACK_BYTES  # refused while streaming, not after
    assert peak - before < RSS_GROWTH_LIMIT, (before, peak)
    assert httpx.get(f"{auth_service.url}/readyz", trust_env=False).status_code == 200


def test_a_declared_oversized_body_is_refused_before_it_is_read(auth_service: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", auth_service.port), timeout=10) as connection:
        connection.sendall(
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        answer = whole_answer(connection)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"invalid_request"' in answer


def whole_answer(connection: socket.socket) -> bytes:
    """The response's head and its Content-Length of body: one recv may return the head alone (the server
    may send them in separate segments), which made this test fail now and then."""
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _content_length(answer):
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def _content_length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect", "/register", "/consent", "/callback"])
def test_every_endpoint_that_reads_a_body_refuses_one_over_the_limit(
    auth_service: ServiceProcess, path: str
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield CHUNK  # 256 KiB, over the 64 KiB default; chunked, as no length is known

    response = httpx.post(
        auth_service.url + path,
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        trust_env=False,
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_a_browser_form_over_the_limit_gets_a_page(auth_service: ServiceProcess) -> None:
    response = httpx.post(
        auth_service.url + "/consent",
        content=b"decision=approve&pad=" + b"a" * (128 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html,*/*"},
        trust_env=False,
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "larger than 65536 bytes" in response.text
