"""Slow or numerous clients when uvicorn is exposed directly (issue 12): `mcp-auth serve` applies
AUTH_LIMIT_CONCURRENCY, AUTH_TIMEOUT_KEEP_ALIVE and AUTH_MAX_HEADER_BYTES (cli/server.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx

from ..auth_process import dev_auth_service


def test_an_oversized_request_head_is_refused_when_a_header_limit_is_set(migrated_database: str) -> None:
    with dev_auth_service(migrated_database, env={"AUTH_MAX_HEADER_BYTES": "16384"}) as service:
        url = f"{service.issuer}/healthz"
        assert httpx.get(url, headers={"x-pad": "a" * 8000}, trust_env=False).status_code == 200
        with socket.create_connection(("127.0.0.1", service.process.port), timeout=10) as connection:
            connection.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
            )
            answer = connection.recv(4096)
        assert answer.startswith(b"HTTP/1.1 4") or answer == b"", answer  # refused, never served


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_header_without_end_does_not_grow_the_process_with_default_settings(migrated_database: str) -> None:
    """httptools, the default parser, held a request head in memory without limit: 100 MB sent in one header
    grew the process by 100 MB (a few such connections exhaust a 512 MiB container)."""
    with dev_auth_service(migrated_database) as service:
        before = rss(service.process.pid)
        sent = 0
        answer = b""
        with socket.create_connection(("127.0.0.1", service.process.port), timeout=10) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            try:
                for _ in range(1600):  # 100 MB, never ending the header
                    connection.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:
                pass  # refused and closed by the server
            with contextlib.suppress(OSError):
                answer = connection.recv(4096)
        growth = rss(service.process.pid) - before
        assert growth < 20 * 2**20, (growth, sent)
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer
        # A head within the limit (default 64 KiB) is served as before.
        url = f"{service.issuer}/healthz"
        assert httpx.get(url, headers={"x-pad": "a" * 32000}, trust_env=False).status_code == 200


def test_connections_beyond_the_concurrency_limit_get_503_not_a_queue(migrated_database: str) -> None:
    env = {"AUTH_LIMIT_CONCURRENCY": "3", "AUTH_TIMEOUT_KEEP_ALIVE": "2"}
    with dev_auth_service(migrated_database, env=env) as service:
        address = ("127.0.0.1", service.process.port)
        idle = [socket.create_connection(address, timeout=10) for _ in range(3)]  # slow clients, holding
        time.sleep(0.3)
        try:
            refused = httpx.get(f"{service.issuer}/healthz", trust_env=False)
            assert refused.status_code == 503
        finally:
            for connection in idle:
                connection.close()
        time.sleep(0.3)
        assert httpx.get(f"{service.issuer}/healthz", trust_env=False).status_code == 200


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(migrated_database: str) -> None:
    with dev_auth_service(migrated_database, env={"AUTH_TIMEOUT_KEEP_ALIVE": "1"}) as service:
        connection = socket.create_connection(("127.0.0.1", service.process.port), timeout=10)
        with connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            answer = b""
            while chunk := connection.recv(4096):  # the answer, then the end: closed by the server
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
            assert time.monotonic() - started < 6  # 1 s idle, then closed; not the 10 s socket timeout
