"""`mcp-auth clients add --jwks/--jwks-uri`: clients that authenticate with their own key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.models import Client

from ..client_assertions import ClientKey
from ..conftest import RESOURCE_A
from .test_admin_commands import mcp_auth


def stored(database: str, client_id: str) -> Client:
    async def read() -> Client:
        engine = create_engine(database)
        try:
            async with create_session_factory(engine)() as session:
                client = await session.get(Client, client_id)
                assert client is not None
                return client
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_machine_client_with_a_jwks_file_has_keys_and_no_secret(
    migrated_database: str, tmp_path: Path
) -> None:
    key = ClientKey()
    (tmp_path / "jwks.json").write_text(json.dumps(key.jwks))
    added = json.loads(
        mcp_auth(
            migrated_database,
            *(
                "clients",
                "add",
                "--name",
                "agent",
                "--machine",
                "--resource",
                RESOURCE_A,
                "--scope",
                "mcp:tools",
            ),
            *("--jwks", f"@{tmp_path / 'jwks.json'}", "--json"),
        )
    )
    assert added["client_secret"] is None
    client = stored(migrated_database, added["client_id"])
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.jwks == key.jwks
    assert client.client_secret_hash is None
    assert "private_key_jwt" in mcp_auth(migrated_database, "clients", "list")


def test_resource_server_client_with_a_jwks_uri(migrated_database: str) -> None:
    output = mcp_auth(
        migrated_database,
        *("clients", "add", "--name", "tools", "--resource-server", RESOURCE_A),
        *("--jwks-uri", "https://tools.example.com/.well-known/jwks.json"),
    )
    assert "client_secret" not in output
    assert "private_key_jwt" in output
    client = stored(migrated_database, output.split()[1])
    assert client.jwks_uri == "https://tools.example.com/.well-known/jwks.json"


def test_update_from_a_secret_to_keys_forgets_the_secret(migrated_database: str) -> None:
    base = ("clients", "add", "--name", "job", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools")
    mcp_auth(migrated_database, *base, "--client-id", "job-with-key")
    assert stored(migrated_database, "job-with-key").client_secret_hash is not None
    mcp_auth(
        migrated_database,
        *base,
        "--client-id",
        "job-with-key",
        "--update",
        "--jwks",
        json.dumps(ClientKey().jwks),
    )
    client = stored(migrated_database, "job-with-key")
    assert client.client_secret_hash is None
    assert client.token_endpoint_auth_method == "private_key_jwt"


PRIVATE = {"keys": [{**ClientKey().jwk, "d": "c2VjcmV0"}]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jwks", json.dumps(PRIVATE)], "public keys only"),
        (["--jwks", "{not json"], "not JSON"),
        (["--jwks", "@/no/such/file"], "cannot read /no/such/file"),
        (["--jwks-uri", "http://keys.example.com/jwks"], "https"),
    ],
)
def test_bad_keys_fail_with_one_line(migrated_database: str, extra: list[str], message: str) -> None:
    args = ("clients", "add", "--name", "x", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools")
    assert message in mcp_auth(migrated_database, *args, *extra, expect=1)


def test_a_public_client_or_a_secret_with_keys_is_refused(migrated_database: str) -> None:
    jwks = json.dumps(ClientKey().jwks)
    public = (
        "clients",
        "add",
        "--name",
        "x",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--jwks",
        jwks,
    )
    assert "--public client has none" in mcp_auth(migrated_database, *public, expect=1)
    machine = ("clients", "add", "--name", "x", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools")
    refused = mcp_auth(migrated_database, *machine, "--jwks", jwks, "--secret-env", "S", expect=1, S="s" * 40)
    assert "not --secret-env and --jwks" in refused
