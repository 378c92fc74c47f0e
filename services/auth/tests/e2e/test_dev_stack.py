"""`make dev` on a bare machine: three services ready within 30 s, usable by a real MCP client,
stopped cleanly by Ctrl-C. Ports come from AUTH_ISSUER and DEV_MCP_PORTS so the test never
collides with a developer's own `make dev`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mcp_testing.processes import free_port

from .sdk_client import MemoryStorage, Person, oauth_mcp_client

DEV_STACK = Path(__file__).parents[4] / "scripts" / "dev_stack.py"


async def test_dev_stack_serves_a_real_client_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    auth_port, *mcp_ports = (free_port() for _ in range(3))
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AUTH_", "GITHUB_", "MCP_"))
    }
    env.update(AUTH_ISSUER=f"http://127.0.0.1:{auth_port}", DEV_MCP_PORTS=",".join(map(str, mcp_ports)))
    started = time.monotonic()
    stack = subprocess.Popen(
        [sys.executable, str(DEV_STACK)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = ""
        assert stack.stdout is not None
        while "Ctrl-C stops everything" not in banner:
            line = stack.stdout.readline()
            assert line, f"dev stack ended before it was ready:\n{banner}"
            banner += line
        assert time.monotonic() - started < 30
        async with httpx.AsyncClient() as http:
            for port in (auth_port, *mcp_ports):
                assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        resource = f"http://127.0.0.1:{mcp_ports[0]}/mcp"
        assert f"claude mcp add --transport http tools {resource}" in banner
        async with (
            httpx.AsyncClient() as browser_http,
            oauth_mcp_client(resource, Person(browser_http, "dev-user"), MemoryStorage()) as client,
        ):
            who = await client.call_tool("get_user_info", {})
            assert "dev-user" in str(who.structured_content or who.content)
        assert (tmp_path / ".data" / "auth.db").exists()
    finally:
        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=20) == 0
    async with httpx.AsyncClient() as http:
        for port in (auth_port, *mcp_ports):
            try:
                await http.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                raise AssertionError(f"port {port} still answers after Ctrl-C")
            except httpx.ConnectError:
                pass
