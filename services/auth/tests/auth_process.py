"""`mcp-auth serve` as a real process with the `dev` upstream on Postgres, for tests a browser drives.

The dev upstream's sign-in form takes any username, so a real browser (or a test) can sign in
without a GitHub stand-in; everything else is the production command and settings.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_testing.processes import ServiceProcess, free_port, venv_script

from .conftest import RESOURCES, TEST_SECRET
from .e2e.stack import mcp_auth


@dataclass
class DevAuthService:
    process: ServiceProcess
    env: dict[str, str]

    @property
    def issuer(self) -> str:
        return self.env["AUTH_ISSUER"]

    def cli(self, *args: str) -> dict[str, Any]:
        """An `mcp-auth … --json` command against this service's database."""
        answer: dict[str, Any] = json.loads(mcp_auth(self.env, *args, "--json"))
        return answer

    def machine_token(self, client: dict[str, Any], resource: str) -> str:
        """An access token for a machine client (`clients add --machine`), by client_credentials."""
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": resource},
            auth=(client["client_id"], client["client_secret"]),
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def tools_resources(*urls: str) -> list[dict[str, Any]]:
    """AUTH_RESOURCES entries for MCP servers at `urls`, each with the one scope `mcp:tools`."""
    return [
        {"resource": url, "scopes": ["mcp:tools"], "name": f"Tools {index}"}
        for index, url in enumerate(urls, 1)
    ]


@contextlib.contextmanager
def dev_auth_service(
    database_url: str,
    resources: list[dict[str, Any]] = RESOURCES,
    *,
    workers: int = 1,
    migrate: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[DevAuthService]:
    """`mcp-auth serve [--workers N]` on a free port, optionally migrating its database first."""
    port = free_port()
    settings = {
        "AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "AUTH_PORT": str(port),
        "AUTH_DATABASE_URL": database_url,
        "AUTH_SECRET_KEY": TEST_SECRET,
        "AUTH_UPSTREAM": "dev",
        "AUTH_RESOURCES": json.dumps(resources),
        **(env or {}),
    }
    if migrate:
        mcp_auth(settings, "migrate")
    argv = [venv_script("mcp-auth"), "serve", *(["--workers", str(workers)] if workers > 1 else [])]
    with ServiceProcess(argv, port=port, env=settings) as process:
        yield DevAuthService(process, settings)
