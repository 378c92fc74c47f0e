"""ServiceProcess starts a real server, waits for readiness, reports failures with the log, and stops it."""

import signal
import socket
import sys

import httpx
import pytest

from mcp_testing.processes import ServiceProcess, ServiceStartError, venv_script

# A tiny real server: /readyz answers 200, everything else 404; optionally deaf to SIGTERM.
SERVER = """
import http.server, os, signal, sys
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
print("serving", os.environ.get("GREETING", ""), flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _server(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", SERVER, str(port), *extra]


def test_a_started_service_is_ready_and_stops_on_sigterm(free_port: int) -> None:
    with ServiceProcess(_server(free_port), port=free_port, env={"GREETING": "hello"}) as service:
        assert service.url == f"http://127.0.0.1:{free_port}"
        assert httpx.get(service.url + "/readyz").status_code == 200
    assert service.returncode == -signal.SIGTERM
    assert "serving hello" in service.log_text()


def test_a_service_deaf_to_sigterm_is_killed(free_port: int) -> None:
    service = ServiceProcess(_server(free_port, "--ignore-term"), port=free_port, stop_grace=0.3)
    with service:
        pass
    assert service.returncode == -signal.SIGKILL


def test_an_early_exit_fails_with_the_log_tail(free_port: int) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: no database'); sys.exit(3)"]
    with pytest.raises(ServiceStartError, match=r"exited with 3(.|\n)*boom: no database"):
        ServiceProcess(argv, port=free_port).start()


def test_a_service_never_ready_times_out_and_is_stopped(free_port: int) -> None:
    service = ServiceProcess(_server(free_port), port=free_port, ready_path="/healthz", ready_timeout=0.5)
    with pytest.raises(ServiceStartError, match=r"/healthz did not answer 200 within 0\.5s"):
        service.start()
    assert service.returncode == -signal.SIGTERM
    with pytest.raises(httpx.ConnectError):
        httpx.get(service.url + "/readyz")


def test_the_free_port_fixture_gives_a_bindable_loopback_port(free_port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port))


def test_venv_script_finds_installed_commands() -> None:
    assert venv_script("mcp-standin").startswith(sys.prefix)
    with pytest.raises(FileNotFoundError, match="uv sync"):
        venv_script("no-such-command")
