"""Runs a real service as a subprocess for a test: started on a loopback port, awaited until ready, stopped.

Tests that exercise the shipped commands (`mcp-auth serve`, `mcp-tools serve`, `mcp-standin`) start them
the way an operator does, so what passes here is what runs in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

__all__ = ["ServiceProcess", "ServiceStartError", "free_port", "free_port_fixture", "venv_script"]


class ServiceStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now; the service binds it itself, so another could take it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def venv_script(name: str) -> str:
    """The path of a console script installed beside this interpreter, which works inside `uv run`."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        raise FileNotFoundError(f"{script} is missing; run `uv sync --all-packages`")
    return str(script)


class ServiceProcess:
    """One service subprocess; its stdout and stderr go to one log file, readable with `log_text()`.

    port = free_port()
    argv = [venv_script("mcp-standin"), "github", "--port", str(port)]
    with ServiceProcess(argv, port=port) as github:
        httpx.get(github.url + "/api/v3/user")
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        ready_path: str = "/readyz",
        ready_timeout: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.url = f"http://{host}:{port}"
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._cwd = cwd
        self._ready_url = self.url + ready_path
        self._ready_timeout = ready_timeout
        self._stop_grace = stop_grace
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (of the server's first process), e.g. to read its memory use."""
        if self._process is None:
            raise RuntimeError("the process is not running; call start() first")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path is not None else ""

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> Self:
        # The log outlives the process (kept in the temp directory) so a failure can be read afterwards.
        log_fd, log_name = tempfile.mkstemp(prefix=f"service-{self.port}-", suffix=".log")
        self.log_path = Path(log_name)
        # A session of its own, so stop() signals the whole process group (a server's workers too).
        try:
            self._process = subprocess.Popen(
                self.argv,
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)  # the child holds its own copy
        try:
            self._wait_until_ready()
        except ServiceStartError:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout
        # trust_env=False: a proxy configured in the environment must not intercept loopback probes.
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.returncode is not None:
                    raise ServiceStartError(
                        f"{self.argv[0]} exited with {self.returncode} before it was ready;"
                        f" log tail:\n{self._log_tail()}"
                    )
                try:
                    if client.get(self._ready_url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ServiceStartError(
                        f"{self._ready_url} did not answer 200 within {self._ready_timeout}s;"
                        f" log tail:\n{self._log_tail()}"
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the service has not exited within the grace period."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self._stop_grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited in the meantime
        os.killpg(pid, signum)


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    """A free loopback port for a service the test starts."""
    return free_port()
