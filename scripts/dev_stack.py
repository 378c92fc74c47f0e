"""`make dev`: the auth service and two MCP services on a bare machine, until Ctrl-C.

Runs on the embedded SQLite database with the `dev` upstream (a sign-in form that takes any
username, refused off loopback). The MCP services' own confidential clients are declared at each
start from credentials kept in .data/ (idempotent), so restarts and a wiped database both work.

Ports (README, quick start): the auth service listens on AUTH_ISSUER's port (default
http://127.0.0.1:9000); the MCP services on DEV_MCP_PORTS, comma-separated (default 9101,9102), e.g.
`make dev AUTH_ISSUER=http://127.0.0.1:9500 DEV_MCP_PORTS=9601,9602`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

BIN = Path(sys.executable).parent
DATA = Path(".data")
READY_TIMEOUT = 30.0


def run_cli(*args: str) -> str:
    result = subprocess.run([str(BIN / "mcp-auth"), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"dev: mcp-auth {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def client_for(resource: str, port: int) -> dict[str, str]:
    """The MCP service's confidential client: made once, kept in .data/, declared idempotently."""
    path = DATA / f"mcp-{port}-client.json"
    if not path.exists():
        path.write_text(
            json.dumps({"client_id": f"mcp-dev-{port}", "client_secret": secrets.token_urlsafe(32)})
        )
        path.chmod(0o600)
    client: dict[str, str] = json.loads(path.read_text())
    os.environ["DEV_MCP_CLIENT_SECRET"] = client["client_secret"]
    run_cli(
        "clients",
        "add",
        "--name",
        f"MCP service :{port}",
        "--resource-server",
        resource,
        "--client-id",
        client["client_id"],
        "--secret-env",
        "DEV_MCP_CLIENT_SECRET",
        "--update",
    )
    return client


def wait_ready(urls: list[str], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("dev: a service exited during start-up (see its log lines above)")
        try:
            with urllib.request.urlopen(f"{pending[0]}/readyz", timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    pending.pop(0)
                    continue
        except OSError:
            pass
        time.sleep(0.2)
    if pending:
        raise SystemExit(f"dev: not ready within {READY_TIMEOUT:.0f} s: {', '.join(pending)}")


def dev_mcp_ports(value: str) -> list[int]:
    """DEV_MCP_PORTS: distinct TCP ports, comma-separated; anything else stops `make dev` with one line."""
    try:
        ports = [int(part) for part in value.split(",")]
    except ValueError:
        ports = []
    if not ports or len(set(ports)) != len(ports) or not all(0 < port < 65536 for port in ports):
        sys.exit(f"dev: DEV_MCP_PORTS must be distinct TCP ports, comma-separated (9101,9102); got {value!r}")
    return ports


def main() -> None:
    DATA.mkdir(exist_ok=True)
    issuer = os.environ.get("AUTH_ISSUER", "http://127.0.0.1:9000")
    mcp_ports = dev_mcp_ports(os.environ.get("DEV_MCP_PORTS", "9101,9102"))
    resources = [f"http://127.0.0.1:{port}/mcp" for port in mcp_ports]
    auth_env = {**os.environ, "AUTH_ISSUER": issuer}
    if "AUTH_RESOURCES" not in os.environ:
        auth_env["AUTH_RESOURCES"] = json.dumps(
            [
                {
                    "resource": r,
                    "scopes": ["mcp:tools", "github:repos"],
                    "default_scopes": ["mcp:tools"],
                    "name": f"Example MCP server :{p}",
                    "upstream_token_scope": "github:repos",
                    "aliases": [f"http://127.0.0.1:{p}/sse"],  # its legacy SSE endpoint, same server
                }
                for r, p in zip(resources, mcp_ports, strict=True)
            ]
        )
    os.environ.update(auth_env)
    run_cli("migrate")
    processes = [subprocess.Popen([str(BIN / "mcp-auth"), "serve"], env=auth_env)]
    for port, resource in zip(mcp_ports, resources, strict=True):
        client = client_for(resource, port)
        env = {
            **os.environ,
            "MCP_RESOURCE_URL": resource,
            "MCP_AUTH_ISSUER": issuer,
            "MCP_CLIENT_ID": client["client_id"],
            "MCP_CLIENT_SECRET": client["client_secret"],
        }
        processes.append(subprocess.Popen([str(BIN / "mcp-tools"), "serve"], env=env))

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        wait_ready([issuer, *(f"http://127.0.0.1:{port}" for port in mcp_ports)], processes)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        stop()
    print(banner(issuer, resources), flush=True)
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)
    print("dev: a service stopped; stopping the others", file=sys.stderr)
    stop()


def banner(issuer: str, resources: list[str]) -> str:
    lines = [
        "",
        "MCP auth is running (dev upstream: sign in with any username).",
        f"  auth service    {issuer}   (metadata: {issuer}/.well-known/oauth-authorization-server)",
        *(f"  MCP service     {resource}" for resource in resources),
        "",
        "Paste an MCP service URL into a client (legacy SSE clients: …/sse instead of …/mcp):",
        f"  MCP Inspector:  npx @modelcontextprotocol/inspector  ->  Streamable HTTP, URL {resources[0]}",
        f"  Claude Code:    claude mcp add --transport http tools {resources[0]}",
        "Tokens are issued for exactly the URL you paste. Ctrl-C stops everything.",
        f"(database: {os.environ.get('AUTH_DATABASE_URL') or '.data/auth.db'}; port {urlsplit(issuer).port})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
