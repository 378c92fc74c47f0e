"""Clients an operator would create with `mcp-auth clients add`, made directly in the test database."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.clients import create_client

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def runtime_of(client: httpx.AsyncClient) -> Runtime:
    runtime: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    return runtime


async def add_client(client: httpx.AsyncClient, **fields: Any) -> tuple[str, str]:
    async with runtime_of(client).sessions() as session:
        created, secret = create_client(session, **fields)
        await session.commit()
    assert secret is not None
    return created.client_id, secret


async def machine_client(
    client: httpx.AsyncClient, resources: list[str], scopes: list[str]
) -> tuple[str, str]:
    return await add_client(
        client,
        origin="machine",
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        allowed_resources=resources,
        allowed_scopes=scopes,
        client_name="CI job",
    )


async def resource_server_client(client: httpx.AsyncClient, resource: str) -> tuple[str, str]:
    return await add_client(
        client,
        origin="resource_server",
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=[TOKEN_EXCHANGE],
        served_resource=resource,
        client_name="MCP server",
    )


async def key_client(client: httpx.AsyncClient, origin: str = "machine", **fields: Any) -> str:
    """A private_key_jwt client (RFC 7523 §2.2): `fields` carry its `jwks` or `jwks_uri`; no secret."""
    defaults: dict[str, Any] = {
        "machine": dict(grant_types=["client_credentials"], client_name="CI job with a key"),
        "resource_server": dict(grant_types=[TOKEN_EXCHANGE], client_name="MCP server with a key"),
    }[origin]
    async with runtime_of(client).sessions() as session:
        created, secret = create_client(
            session,
            origin=origin,
            redirect_uris=[],
            token_endpoint_auth_method="private_key_jwt",
            **{**defaults, **fields},
        )
        await session.commit()
    assert secret is None
    return created.client_id
