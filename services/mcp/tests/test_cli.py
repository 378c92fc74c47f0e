"""`mcp-tools serve` as an operator runs it: bad settings refused in one line, a clean stop on signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from mcp_testing.processes import free_port, venv_script

from .auth_standin import AuthStandIn


def _run_serve(*arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MCP_")}
    return subprocess.run(
        [venv_script("mcp-tools"), "serve", *arguments],
        env={**environment, **variables},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "mcp-tools: MCP_RESOURCE_URL: missing; expected this server's canonical MCP URL"),
        ({"MCP_RESOURCE_URL": "http://127.0.0.1:9101/mcp"}, "mcp-tools: MCP_AUTH_ISSUER: missing; required"),
        (
            {"MCP_RESOURCE_URL": "http://127.0.0.1:9101/mcp", "MCP_AUTH": "off", "MCP_HOST": "10.0.0.5"},
            "mcp-tools: MCP_AUTH=off is refused unless MCP_HOST is a loopback address",
        ),
        (
            {"MCP_RESOURCE_URL": "http://127.0.0.1:9101/mcp", "MCP_AUTH": "off", "MCP_PORT": "high"},
            "mcp-tools: MCP_PORT: Input should be a valid integer",
        ),
    ],
)
def test_bad_settings_stop_start_up_with_one_line_and_exit_2(variables: dict[str, str], message: str) -> None:
    completed = _run_serve(**variables)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith(message)
    assert "Traceback" not in completed.stderr


def test_workers_must_be_positive() -> None:
    completed = _run_serve("--workers", "0", MCP_RESOURCE_URL="http://127.0.0.1:9101/mcp", MCP_AUTH="off")
    assert completed.returncode == 2
    assert "--workers must be at least 1" in completed.stderr


@pytest.mark.parametrize(
    ("stop_signal", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)]
)
def test_signals_stop_the_service_cleanly(stop_signal: signal.Signals, workers: int) -> None:
    port = free_port()
    environment = {**os.environ, "MCP_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp", "MCP_AUTH": "off"}
    # Its own process group, as a terminal's Ctrl-C or a container runtime would signal it.
    with subprocess.Popen(
        [venv_script("mcp-tools"), "serve", "--workers", str(workers)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        _wait_until_healthy(f"http://127.0.0.1:{port}/healthz")
        os.killpg(process.pid, stop_signal)
        _, log = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


def _wait_until_healthy(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_an_issuer_the_auth_service_contradicts_stops_start_up_with_one_line() -> None:
    """Issue 14 finding 4: MCP_AUTH_ISSUER with a trailing slash started anyway and refused good tokens."""
    port = free_port()
    with AuthStandIn() as auth:
        issuer = auth.issuer
        completed = _run_serve(MCP_RESOURCE_URL=f"http://127.0.0.1:{port}/mcp", MCP_AUTH_ISSUER=issuer + "/")
    assert completed.returncode != 0
    lines = [json.loads(line)["message"] for line in completed.stderr.splitlines()]
    mismatch = [line for line in lines if line.startswith("issuer mismatch")]
    assert mismatch == [
        f"issuer mismatch: configured '{issuer}/', but {issuer}/.well-known/oauth-authorization-server"
        f" names '{issuer}'; set the issuer to exactly the string the auth service publishes"
    ]
    assert "Traceback" not in completed.stderr


def test_a_dpop_proof_replayed_to_another_worker_process_is_prevented_at_start_up() -> None:
    """Each worker process would keep its own memory of used DPoP proofs (RFC 9449 §11.1): a captured
    proof (with its token) replayed on a new connection lands on another worker and is accepted there.
    With authentication on, several workers need the shared memory, MCP_REDIS_URL; without it the
    service refuses to start, naming the setting."""
    port = free_port()
    completed = _run_serve(
        "--workers",
        "2",
        MCP_RESOURCE_URL=f"http://127.0.0.1:{port}/mcp",
        MCP_AUTH_ISSUER=f"http://127.0.0.1:{free_port()}",
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("mcp-tools: --workers 2 needs MCP_REDIS_URL"), completed.stderr
    assert completed.stderr.count("\n") == 1
