"""A private `redis-server` on a free loopback port, that a test may stop and start again.

For tests about Redis going away (the shared one on 6379 belongs to everyone on the machine) and for
tests that want a Redis no other test run writes to. Nothing is saved to disk.

    with RedisServer() as redis:
        settings = {"AUTH_REDIS_URL": redis.url}
        ...
        redis.stop()   # connections refused from now on
        redis.start()  # the same port again, empty
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Self

import pytest

from mcp_testing.processes import free_port

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str:
    """`redis-server` (Debian's package; .ci/run installs it); missing, skip locally and fail in CI."""
    path = shutil.which("redis-server")
    if path is not None:
        return path
    problem = "redis-server not found; apt-get install redis-server (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


class RedisServer:
    def __init__(self, ready_timeout: float = 10.0) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._ready_timeout = ready_timeout
        self._directory = tempfile.mkdtemp(prefix="redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        argv = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", self._directory]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self._ready_timeout
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it, as a crash would: clients see refused connections from now on."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)
