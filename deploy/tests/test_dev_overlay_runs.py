"""The dev overlay runs (issue 13, finding 4): its containers' commands, run here as local processes with the
environment the overlay gives them, migrate, serve, and make the MCP servers Ready and able to check tokens.

What a local cluster provides is stood in for as little as possible: the in-cluster Postgres by this
machine's (a fresh database), the Redis Service `mcp-auth-redis:6379` by a private `redis-server`, the
Service name `mcp-auth-server:9000` by the auth process's loopback
address, and the containers' fixed ports by free ones. The issuer and resource URLs stay exactly as the
overlay sets them (http://localhost:9000, http://localhost:9101/mcp): browsers reach them through
port-forwards, while the MCP servers reach the auth service only through MCP_AUTH_INTERNAL_URL.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mcp_testing.postgres import temporary_database
from mcp_testing.processes import ServiceProcess, free_port, venv_script
from mcp_testing.redis_server import RedisServer

Manifest = dict[str, Any]
LOOPBACK = "127.0.0.1"


def by_name(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def container_environment(objects: list[Manifest], container: dict[str, Any]) -> dict[str, str]:
    """What Kubernetes would put in the container's environment: envFrom, then env (which wins)."""
    config_maps, secrets = by_name(objects, "ConfigMap"), by_name(objects, "Secret")

    def secret_data(name: str) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in secrets[name].get("data", {}).items()}

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            env.update(secret_data(source["secretRef"]["name"]))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        reference = variable["valueFrom"]
        if "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            env[variable["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
        else:
            ref = reference["secretKeyRef"]
            env[variable["name"]] = secret_data(ref["name"])[ref["key"]]
    return env


def command(container: dict[str, Any]) -> list[str]:
    argv: list[str] = container["command"] + container.get("args", [])
    return [venv_script(argv[0]), *argv[1:]]


class DevOverlay:
    """The dev overlay's workloads, with their environments as the cluster would give them."""

    def __init__(self, objects: list[Manifest]) -> None:
        self.objects = objects
        deployments = by_name(objects, "Deployment")
        self.auth = deployments["mcp-auth-server"]["spec"]["template"]["spec"]
        self.mcp = {
            name: spec["spec"]["template"]["spec"]
            for name, spec in deployments.items()
            if name.startswith("mcp-server-")
        }

    def env(self, container: dict[str, Any], **local: str) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", **container_environment(self.objects, container), **local}


@pytest.fixture(scope="module")
def overlay(renders: dict[str, list[Manifest]]) -> DevOverlay:
    return DevOverlay(renders["dev"])


@pytest.fixture(scope="module")
def running(overlay: DevOverlay, overlay_database: str) -> Iterator[dict[str, Any]]:
    with RedisServer() as redis:
        yield from run_overlay(overlay, overlay_database, redis.url)


def run_overlay(overlay: DevOverlay, database_url: str, redis_url: str) -> Iterator[dict[str, Any]]:
    auth_port, auth_metrics = free_port(), free_port()
    (init,) = overlay.auth["initContainers"]
    (serve,) = overlay.auth["containers"]
    # The overlay's Postgres is postgres:5432 in the cluster; here, this machine's, in its own database.
    # Its Redis is the Service mcp-auth-redis:6379; here, a redis-server of this test's own.
    in_cluster = urlsplit(overlay.env(serve)["AUTH_REDIS_URL"])
    assert (in_cluster.hostname, in_cluster.port) == ("mcp-auth-redis", 6379)
    database = {"AUTH_DATABASE_URL": database_url, "AUTH_REDIS_URL": redis_url}
    migrated = subprocess.run(
        command(init),
        env=overlay.env(init, **database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    auth_env = overlay.env(
        serve, **database, AUTH_HOST=LOOPBACK, AUTH_PORT=str(auth_port), AUTH_METRICS_PORT=str(auth_metrics)
    )
    with ExitStack() as stack:
        auth = stack.enter_context(ServiceProcess(command(serve), port=auth_port, env=auth_env))
        servers = {}
        for name, spec in overlay.mcp.items():
            (container,) = spec["containers"]
            env = overlay.env(container)
            internal = urlsplit(env["MCP_AUTH_INTERNAL_URL"])
            assert (internal.hostname, internal.port) == (
                "mcp-auth-server",
                int(serve["ports"][0]["containerPort"]),
            )
            port = free_port()
            env |= {
                "MCP_HOST": LOOPBACK,
                "MCP_PORT": str(port),
                "MCP_METRICS_PORT": str(free_port()),
                # The Service's in-cluster name, as this machine reaches it.
                "MCP_AUTH_INTERNAL_URL": f"http://{LOOPBACK}:{auth_port}",
            }
            servers[name] = (stack.enter_context(ServiceProcess(command(container), port=port, env=env)), env)
        yield {"auth": auth, "auth_env": auth_env, "servers": servers}


@pytest.fixture(scope="module")
def overlay_database() -> Iterator[str]:
    """A database of its own, named by a plain postgresql:// URL as the overlay's Secret names its own."""
    with temporary_database() as url:
        yield url.replace("postgresql+asyncpg://", "postgresql://", 1)


def test_the_auth_service_publishes_the_overlays_issuer(running: dict[str, Any]) -> None:
    metadata = httpx.get(
        f"{running['auth'].url}/.well-known/oauth-authorization-server", trust_env=False
    ).json()
    assert metadata["issuer"] == "http://localhost:9000"
    assert running["auth_env"]["AUTH_UPSTREAM"] == "dev"


def test_every_mcp_server_is_ready_through_the_internal_url(running: dict[str, Any]) -> None:
    """Ready means it holds the auth service's keys, fetched without resolving the public issuer."""
    assert len(running["servers"]) == 2
    for service, env in running["servers"].values():
        assert httpx.get(f"{service.url}/readyz", trust_env=False).status_code == 200
        resource = env["MCP_RESOURCE_URL"]
        metadata = httpx.get(
            f"{service.url}/.well-known/oauth-protected-resource{urlsplit(resource).path}",
            headers={"Host": urlsplit(resource).netloc},
            trust_env=False,
        ).json()
        assert metadata == {
            **metadata,
            "resource": resource,
            "authorization_servers": ["http://localhost:9000"],
        }


def test_a_token_from_the_auth_service_is_accepted_by_the_mcp_server(running: dict[str, Any]) -> None:
    service, env = running["servers"]["mcp-server-one"]
    resource = env["MCP_RESOURCE_URL"]
    add = [
        "clients",
        "add",
        "--name",
        "dev check",
        "--machine",
        "--resource",
        resource,
        "--scope",
        "mcp:tools",
    ]
    declared = subprocess.run(
        [venv_script("mcp-auth"), *add, "--json"],
        env=running["auth_env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    client = json.loads(declared.stdout)
    token = httpx.post(
        f"{running['auth'].url}/token",
        data={"grant_type": "client_credentials", "resource": resource, "scope": "mcp:tools"},
        auth=(client["client_id"], client["client_secret"]),
        trust_env=False,
    ).json()["access_token"]
    # As through `kubectl port-forward service/mcp-server-one 9101:8000`: the Host is the resource's.
    listed = httpx.post(
        f"{service.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            "Host": urlsplit(resource).netloc,
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        trust_env=False,
    )
    assert listed.status_code == 200, listed.text
    assert "calculate" in {tool["name"] for tool in listed.json()["result"]["tools"]}


def test_the_dev_cluster_script_forwards_what_the_overlay_serves(overlay: DevOverlay) -> None:
    """deploy/scripts/dev-cluster.sh's port-forwards put each Service where the overlay's URLs point."""
    script = (Path(__file__).resolve().parents[1] / "scripts" / "dev-cluster.sh").read_text()
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    namespace = re.search(r"^namespace=(\S+)$", script, re.MULTILINE)
    assert namespace is not None
    forwards = {
        service: (int(local), int(remote))
        for service, local, remote in re.findall(r"port-forward service/(\S+) (\d+):(\d+)", script)
    }
    services = by_name(overlay.objects, "Service")
    assert {s["metadata"]["namespace"] for s in services.values()} == {namespace[1]}
    config = by_name(overlay.objects, "ConfigMap")
    issuer_config = next(c for name, c in config.items() if name.startswith("mcp-auth-config-"))
    expected = {"mcp-auth-server": urlsplit(issuer_config["data"]["AUTH_ISSUER"]).port}
    for name in overlay.mcp:
        data = next(
            c for n, c in config.items() if n.startswith(name.replace("mcp-server-", "mcp-server-config-"))
        )
        expected[name] = urlsplit(data["data"]["MCP_RESOURCE_URL"]).port
    assert {service: local for service, (local, _) in forwards.items()} == expected
    for service, (_, remote) in forwards.items():
        ports = {port["port"] for port in services[service]["spec"]["ports"] if port["name"] == "http"}
        assert ports == {remote}, f"{service} serves on {ports}, the script forwards {remote}"
