"""`/token` client_credentials side by side with panva's `oidc-provider`, the certified provider many embed.

    uv run python bench/token_peer.py [--rounds 5] [--seconds 5] [--concurrency 32] [--variant ...]

Installs `oidc-provider` (OIDC_PROVIDER_VERSION) and `pg` from npm into a throwaway folder, with Node 22
from npm's `node` package when the machine's Node is older (oidc-provider 9 supports the current LTS
releases only); nothing from npm is kept or committed. The peer (bench/token_peer_server.mjs) issues JWT
access tokens (ES256) by client_credentials with a resource indicator (RFC 8707), reading its client from
PostgreSQL on every token (one indexed read, as `mcp-auth serve` does with no cache in front of it).
Both servers run on CPU 0, the load generator on CPU 1; 5 interleaved rounds of 5 s at 32 connections by
default; bench/token_compare.py does the measuring and prints the table: tokens/s of each, the ratio,
service CPU per token, PostgreSQL CPU per token and the PostgreSQL sessions each opened.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from _harness import pinned, run, service_pid

from mcp_testing.processes import ServiceProcess, free_port

OIDC_PROVIDER_VERSION = "9.13.3"
PG_VERSION = "8.23.1"
NODE_PACKAGE = "node@22"
MIN_NODE_MAJOR = 22
SERVER = Path(__file__).with_name("token_peer_server.mjs")
SCOPES = "mcp:tools github:repos"


@dataclass
class Peer:
    port: int
    pid: int
    client_id: str
    client_secret: str
    version: str
    node_version: str


def npm(folder: Path, *args: str) -> None:
    subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=600,
        capture_output=True,
    )


def node_version(executable: str) -> str:
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    return version.strip()


def node_major(executable: str) -> int:
    return int(node_version(executable).lstrip("v").split(".")[0])


def install(folder: Path) -> str:
    """oidc-provider and pg into `folder` (a package.json generated there); returns the Node to run."""
    package = {"name": "token-peer", "private": True, "type": "module"}
    (folder / "package.json").write_text(json.dumps(package))
    packages = [f"oidc-provider@{OIDC_PROVIDER_VERSION}", f"pg@{PG_VERSION}"]
    system_node = shutil.which("node")
    if system_node is None or node_major(system_node) < MIN_NODE_MAJOR:
        packages.append(NODE_PACKAGE)
    npm(folder, "install", *packages)
    shutil.copy(SERVER, folder / "server.mjs")
    local = folder / "node_modules" / ".bin" / "node"
    return str(local) if local.exists() else str(system_node)


async def seed_client(url: str, client_id: str, secret: str) -> None:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute("CREATE TABLE oidc_clients (id text PRIMARY KEY, payload jsonb NOT NULL)")
        client = {
            "client_id": client_id,
            "client_secret": secret,
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": SCOPES,
        }
        await connection.execute("INSERT INTO oidc_clients VALUES ($1, $2)", client_id, json.dumps(client))
    finally:
        await connection.close()


@contextlib.contextmanager
def peer_service(database_url: str, resource: str, *, cpus: str | None = None) -> Iterator[Peer]:
    """oidc-provider on a loopback port, its clients in `database_url` (a plain postgresql:// URL)."""
    client_id, secret = "bench-machine", secrets.token_urlsafe(32)
    run(seed_client(database_url, client_id, secret))
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as name:
        folder = Path(name)
        node = install(folder)
        port = free_port()
        env = {
            "NODE_ENV": "production",
            "PEER_ISSUER": f"http://127.0.0.1:{port}",
            "PEER_PORT": str(port),
            "PEER_DATABASE_URL": database_url,
            "PEER_RESOURCE": resource,
            "PEER_SCOPES": SCOPES,
        }
        argv = pinned([node, "server.mjs"], cpus)
        with ServiceProcess(argv, port=port, env=env, cwd=folder, ready_timeout=60) as process:
            installed = json.loads((folder / "node_modules/oidc-provider/package.json").read_text())
            yield Peer(
                port,
                service_pid(process),
                client_id,
                secret,
                installed["version"],
                node_version(node),
            )


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from token_compare import main as compare

    arguments = sys.argv[1:]
    if "--grants" not in arguments:
        arguments += ["--grants", "client_credentials"]
    compare(["--peer", *arguments], description=__doc__)


if __name__ == "__main__":
    main()
