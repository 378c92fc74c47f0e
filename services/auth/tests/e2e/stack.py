"""The product as processes: the auth service (Postgres, GitHub upstream = the stand-in) and
MCP services, each started the way an operator would, with their commands and environment.

A service may run as several replicas behind a round-robin proxy (its public URL is then the
proxy's): every replica gets the same settings and listens on a port of its own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_auth_kit import DPoPKey, PrivateKeyJWT
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.processes import ServiceProcess, free_port, venv_script
from mcp_testing.round_robin_proxy import RoundRobinProxy

from ..conftest import TEST_SECRET

SCOPES = ["mcp:tools", "github:repos"]


@dataclass(frozen=True)
class Front:
    """Where a service is reached (`url`) and the ports its replicas listen on."""

    url: str
    ports: list[int]


@dataclass
class Stack:
    issuer: str = ""
    auth_env: dict[str, str] = field(default_factory=dict)
    auth: list[ServiceProcess] = field(default_factory=list)  # replicas
    mcp: dict[str, list[ServiceProcess]] = field(default_factory=dict)  # resource URL -> replicas
    proxies: dict[str, RoundRobinProxy] = field(default_factory=dict)  # public base URL -> proxy
    processes: list[ServiceProcess] = field(default_factory=list)

    def front(self, replicas: int) -> Front:
        """One replica is reached directly; several share the URL of a proxy started in front of them."""
        ports = [free_port() for _ in range(replicas)]
        if replicas == 1:
            return Front(f"http://127.0.0.1:{ports[0]}", ports)
        proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports]).start()
        self.proxies[proxy.url] = proxy
        return Front(proxy.url, ports)

    def start_replicas(
        self, front: Front, command: str, env: Mapping[str, str], port_variable: str
    ) -> list[ServiceProcess]:
        """`<command> serve` once per port of `front`, all with the same settings, started together."""
        replicas = [
            ServiceProcess([venv_script(command), "serve"], port=port, env={**env, port_variable: str(port)})
            for port in front.ports
        ]
        self.processes.extend(replicas)  # before starting, so stop() ends them whichever fails
        with ThreadPoolExecutor(len(replicas)) as pool:
            list(pool.map(ServiceProcess.start, replicas))
        return replicas

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for proxy in self.proxies.values():
            proxy.stop()


def mcp_auth(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [venv_script("mcp-auth"), *args],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def start_stack(
    database_url: str,
    github: GitHubStandIn,
    *,
    mcp_count: int = 2,
    auth_replicas: int = 1,
    mcp_replicas: int = 1,
    auth_extra: dict[str, str] | None = None,
    resource_options: Sequence[Mapping[str, Any]] = (),
    mcp_extra: Sequence[Mapping[str, str]] = (),
    mcp_keys: Path | None = None,
) -> Stack:
    """`resource_options[i]` is added to the i-th server's AUTH_RESOURCES entry, `mcp_extra[i]` to its
    environment (e.g. a DPoP policy at both ends). With `mcp_keys` (a directory), each MCP server's own
    client authenticates with a private key kept there (private_key_jwt), not with a secret."""
    stack = Stack()
    try:
        auth_front = stack.front(auth_replicas)
        stack.issuer = issuer = auth_front.url
        mcp_fronts = [stack.front(mcp_replicas) for _ in range(mcp_count)]
        resources = [f"{front.url}/mcp" for front in mcp_fronts]
        app = github.state.add_app(f"{issuer}/callback")
        stack.auth_env = {
            "AUTH_ISSUER": issuer,
            "AUTH_DATABASE_URL": database_url,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "GITHUB_CLIENT_ID": app.client_id,
            "GITHUB_CLIENT_SECRET": app.client_secret,
            "GITHUB_URL": github.base_url,
            "GITHUB_API_URL": github.api_url,
            "AUTH_RESOURCES": json.dumps(
                [
                    {
                        "resource": r,
                        "scopes": SCOPES,
                        "default_scopes": ["mcp:tools"],
                        "name": f"Tools {i}",
                        "upstream_token_scope": "github:repos",
                        **_nth(resource_options, i),
                    }
                    for i, r in enumerate(resources)
                ]
            ),
            **(auth_extra or {}),
        }
        stack.auth = stack.start_replicas(auth_front, "mcp-auth", stack.auth_env, "AUTH_PORT")
        for index, (front, resource) in enumerate(zip(mcp_fronts, resources, strict=True)):
            proof = (
                [] if mcp_keys is None else ["--jwks", json.dumps(_new_key(mcp_keys, index).public_jwks())]
            )
            credentials = json.loads(
                mcp_auth(
                    stack.auth_env,
                    "clients",
                    "add",
                    "--name",
                    f"MCP {front.url}",
                    "--resource-server",
                    resource,
                    *proof,
                    "--json",
                )
            )
            client_proof = (
                {"MCP_CLIENT_SECRET": credentials["client_secret"]}
                if mcp_keys is None
                else {"MCP_CLIENT_PRIVATE_KEY_FILE": str(mcp_keys / f"mcp-{index}.pem")}
            )
            mcp_env = {
                "MCP_RESOURCE_URL": resource,
                "MCP_AUTH_ISSUER": issuer,
                "MCP_CLIENT_ID": credentials["client_id"],
                **client_proof,
                "MCP_GITHUB_API_URL": github.api_url,
                **_nth(mcp_extra, index),
            }
            stack.mcp[resource] = stack.start_replicas(front, "mcp-tools", mcp_env, "MCP_PORT")
    except BaseException:
        stack.stop()
        raise
    return stack


def _new_key(directory: Path, index: int) -> PrivateKeyJWT:
    """A new key for the index-th MCP server's client, its PEM saved where that server reads it."""
    key = DPoPKey.generate("ES256")
    path = directory / f"mcp-{index}.pem"
    path.write_bytes(key.private_key_pem())
    return PrivateKeyJWT.from_pem_file(path)


def _nth(options: Sequence[Mapping[str, Any]], index: int) -> Mapping[str, Any]:
    return options[index] if index < len(options) else {}


def running_stack(
    database_url: str,
    github: GitHubStandIn,
    *,
    mcp_count: int = 2,
    auth_replicas: int = 1,
    mcp_replicas: int = 1,
    resource_options: Sequence[Mapping[str, Any]] = (),
    mcp_extra: Sequence[Mapping[str, str]] = (),
    mcp_keys: Path | None = None,
    **auth_extra: str,
) -> Iterator[Stack]:
    stack = start_stack(
        database_url,
        github,
        mcp_count=mcp_count,
        auth_replicas=auth_replicas,
        mcp_replicas=mcp_replicas,
        auth_extra=auth_extra,
        resource_options=resource_options,
        mcp_extra=mcp_extra,
        mcp_keys=mcp_keys,
    )
    try:
        yield stack
    finally:
        stack.stop()
