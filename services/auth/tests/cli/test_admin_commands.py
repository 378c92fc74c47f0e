"""`mcp-auth` admin commands as an operator runs them: clear output, one-line errors, exit codes."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from typing import Any

import pytest
from sqlalchemy import text

from mcp_auth_server.crypto.opaque_tokens import secret_matches
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.db.models import Client
from mcp_auth_server.db.statements import Sql
from mcp_auth_server.store.grants import add_grant
from mcp_auth_server.store.users import upsert_user
from mcp_auth_server.upstreams.base import Identity
from mcp_testing.processes import venv_script

from ..conftest import RESOURCE_A, TEST_SECRET


def mcp_auth(database: str, *args: str, expect: int = 0, **env: str) -> str:
    result = subprocess.run(
        [venv_script("mcp-auth"), *args],
        env={"AUTH_DATABASE_URL": database, "AUTH_SECRET_KEY": TEST_SECRET, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    if expect:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("mcp-auth: ")
        return result.stderr
    return result.stdout


def test_clients_add_list_remove(migrated_database: str) -> None:
    public = mcp_auth(
        migrated_database,
        "clients",
        "add",
        "--name",
        "Inspector",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
    )
    client_id = public.split()[1]
    assert "client_secret" not in public
    confidential = mcp_auth(
        migrated_database,
        "clients",
        "add",
        "--name",
        "Claude",
        "--redirect-uri",
        "https://claude.ai/api/mcp/auth_callback",
    )
    assert "client_secret:" in confidential
    assert "shown only now" in confidential
    listing = mcp_auth(migrated_database, "clients", "list")
    assert listing.splitlines()[0].split() == ["CLIENT_ID", "ORIGIN", "NAME", "AUTH", "CREATED", "LAST_USED"]
    row = next(line for line in listing.splitlines() if line.startswith(client_id))
    assert "preregistered" in row
    assert "Inspector" in row
    assert mcp_auth(migrated_database, "clients", "remove", client_id).strip() == f"removed {client_id}"
    assert client_id not in mcp_auth(migrated_database, "clients", "list")
    assert mcp_auth(migrated_database, "clients", "remove", client_id, expect=1).strip() == (
        f"mcp-auth: no client {client_id}"
    )


def test_machine_and_resource_server_clients_print_json_for_scripts(migrated_database: str) -> None:
    machine = json.loads(
        mcp_auth(
            migrated_database,
            "clients",
            "add",
            "--name",
            "CI",
            "--machine",
            "--resource",
            RESOURCE_A,
            "--scope",
            "mcp:tools",
            "--json",
        )
    )
    assert machine["kind"] == "machine"
    assert len(machine["client_secret"]) >= 43
    server = json.loads(
        mcp_auth(
            migrated_database, "clients", "add", "--name", "tools", "--resource-server", RESOURCE_A, "--json"
        )
    )
    assert server["kind"] == "resource_server"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clients", "add", "--name", "x", "--machine", "--scope", "s"], "needs at least one --resource"),
        (["clients", "add", "--name", "x", "--redirect-uri", "javascript:alert(1)"], "scheme 'javascript'"),
        (["clients", "add", "--name", "x"], "needs at least one --redirect-uri"),
        (
            ["clients", "add", "--name", "x", "--machine", "--resource", "not a url", "--scope", "s"],
            "not a url",
        ),
        (
            ["resources", "add", "http://h/mcp", "--scope", "offline_access"],
            "offline_access is not a resource",
        ),
        (["resources", "add", "http://h/mcp#x", "--scope", "a"], "fragment"),
        (
            ["resources", "add", "http://h/mcp", "--scope", "a", "--default-scope", "b"],
            "default_scopes: b must",
        ),
        (["resources", "add", "http://h/mcp", "--scope", "a", "--describe", "a"], "write SCOPE=TEXT"),
        (
            ["resources", "add", "http://h/mcp", "--scope", "a", "--upstream-token-scope", "b"],
            "upstream_token_scope: 'b' must also be in scopes",
        ),
        (["users", "disable", "no-such-user"], "no user no-such-user"),
        (["grants", "revoke", "no-such-grant"], "no grant no-such-grant"),
        (["keys", "retire", "no-such-key"], "no key no-such-key"),
    ],
)
def test_bad_input_fails_with_one_line_and_exit_1(
    migrated_database: str, args: list[str], message: str
) -> None:
    assert message in mcp_auth(migrated_database, *args, expect=1)


def test_bad_setting_exits_2(migrated_database: str) -> None:
    assert "AUTH_ISSUER" in mcp_auth(migrated_database, "clients", "list", expect=2, AUTH_ISSUER="ftp://x")


def test_resources_add_list_remove(migrated_database: str) -> None:
    mcp_auth(
        migrated_database,
        "resources",
        "add",
        "HTTPS://Tools.Example.com:443/mcp",
        "--scope",
        "notes:read",
        "--scope",
        "notes:write",
        "--default-scope",
        "notes:read",
        "--name",
        "Notes",
        "--upstream-token-scope",
        "notes:write",
    )
    listing = mcp_auth(migrated_database, "resources", "list")
    row = next(line for line in listing.splitlines() if "tools.example.com" in line)
    assert row.split()[:4] == ["https://tools.example.com/mcp", "database", "notes:read", "notes:write"]
    assert "UPSTREAM_TOKEN" in listing.splitlines()[0]
    assert row.split()[5] == "notes:write"
    mcp_auth(migrated_database, "resources", "remove", "https://tools.example.com/mcp")
    assert "tools.example.com" not in mcp_auth(migrated_database, "resources", "list")


# Finding 6 of issue 14: AUTH_RESOURCES started silently with mistakes the CLI refused. Now both run the
# same validator, and say the same thing (the setting adds which entry).
SAME_MISTAKES = [
    ({"scopes": ["a"], "default_scopes": ["b"]}, ["--scope", "a", "--default-scope", "b"]),
    ({"scopes": ["a", "offline_access"]}, ["--scope", "a", "--scope", "offline_access"]),
    ({"scopes": ["a b"]}, ["--scope", "a b"]),
    ({"scopes": ["a"], "scope_descriptions": {"b": "text"}}, ["--scope", "a", "--describe", "b=text"]),
    ({"scopes": ["a"], "aliases": ["http://h/mcp"]}, ["--scope", "a", "--alias", "http://h/mcp"]),
]


@pytest.mark.parametrize(("entry", "flags"), SAME_MISTAKES)
@pytest.mark.parametrize("url", ["http://h/mcp", "http://h/mcp/"])
def test_auth_resources_and_the_cli_refuse_the_same_mistakes_in_the_same_words(
    migrated_database: str, url: str, entry: dict[str, Any], flags: list[str]
) -> None:
    from mcp_auth_server.settings import SettingsError, load_settings

    cli = mcp_auth(migrated_database, "resources", "add", url, *flags, expect=1).strip()
    with pytest.raises(SettingsError) as setting:
        load_settings(auth_resources=json.dumps([{"resource": url, **entry}]))
    problem = cli.removeprefix(f"mcp-auth: {url}: ")
    assert problem != cli
    assert str(setting.value) == f"AUTH_RESOURCES: entry 0 ({url}): {problem}"


def test_resources_add_keeps_descriptions_and_aliases(migrated_database: str) -> None:
    mcp_auth(
        migrated_database, "resources", "add", "https://notes.example.com/mcp", "--scope", "notes:read",
        "--describe", "notes:read=read your notes", "--alias", "https://notes.example.com/sse",
    )  # fmt: skip

    async def stored() -> tuple[dict[str, Any], list[str]]:
        engine = create_engine(migrated_database)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT scope_descriptions, aliases FROM resources WHERE resource = :r"),
                    {"r": "https://notes.example.com/mcp"},
                )
            ).one()
        await engine.dispose()
        return _json(row[0]), _json(row[1])

    assert asyncio.run(stored()) == ({"notes:read": "read your notes"}, ["https://notes.example.com/sse"])
    mcp_auth(migrated_database, "resources", "remove", "https://notes.example.com/mcp")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_grants_list_and_revoke(migrated_database: str) -> None:
    async def seed() -> str:
        engine = create_engine(migrated_database)
        from mcp_auth_server.crypto.secret_box import SecretBox

        async with create_session_factory(engine)() as session:
            user = await upsert_user(
                session,
                Identity(provider="dev", subject="gwen", login="gwen"),
                SecretBox(TEST_SECRET.encode(), "upstream-token"),
            )
            client_id = json.loads(
                mcp_auth(
                    migrated_database,
                    "clients",
                    "add",
                    "--name",
                    "Granted",
                    "--public",
                    "--redirect-uri",
                    "http://127.0.0.1/cb",
                    "--json",
                )
            )["client_id"]
            grant_id = await add_grant(
                await Sql.of(session),
                user_id=user.id,
                client_id=client_id,
                resource=RESOURCE_A,
                scopes=["mcp:tools"],
                auth_time=0,
                lifetime=3600,
            )
            await session.commit()
        await engine.dispose()
        return grant_id

    grant_id = asyncio.run(seed())
    listing = mcp_auth(migrated_database, "grants", "list", "--user", "gwen")
    assert grant_id in listing
    assert "Granted" in listing
    assert mcp_auth(migrated_database, "grants", "revoke", grant_id).strip() == f"revoked grant {grant_id}"
    assert grant_id not in mcp_auth(migrated_database, "grants", "list", "--user", "gwen")
    assert "revoked_by_operator" in mcp_auth(migrated_database, "grants", "list", "--user", "gwen", "--all")


def test_keys_rotate_list_retire(fresh_postgres_database: str) -> None:
    upgrade(fresh_postgres_database)
    first = mcp_auth(fresh_postgres_database, "keys", "rotate", "--activation-delay", "0").split()[2]
    assert "only active key" in mcp_auth(fresh_postgres_database, "keys", "retire", first, expect=1)
    pending = mcp_auth(fresh_postgres_database, "keys", "rotate", "--activation-delay", "600").split()[2]
    states = {
        line.split()[0]: line.split()[2]
        for line in mcp_auth(fresh_postgres_database, "keys", "list").splitlines()[1:]
    }
    assert states == {first: "active", pending: "pending"}
    assert "only active key" in mcp_auth(fresh_postgres_database, "keys", "retire", first, expect=1)
    second = mcp_auth(
        fresh_postgres_database, "keys", "rotate", "--activation-delay", "0", "--algorithm", "RS256"
    ).split()[2]
    mcp_auth(fresh_postgres_database, "keys", "retire", first)
    states = {
        line.split()[0]: line.split()[2]
        for line in mcp_auth(fresh_postgres_database, "keys", "list").splitlines()[1:]
    }
    assert states[first] == "retiring"  # stops signing, stays published until its tokens expire
    assert states[second] == "active"


def _stored_secret_hash(database: str, client_id: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(database)
        try:
            async with create_session_factory(engine)() as session:
                client = await session.get(Client, client_id)
                return client.client_secret_hash if client else None
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_declared_client_id_and_secret_from_the_environment_are_idempotent(migrated_database: str) -> None:
    client_id = f"mcp-tools-{secrets.token_hex(4)}"
    first, second = "s" * 40, "t" * 40
    args = [
        "clients",
        "add",
        "--name",
        "tools",
        "--resource-server",
        RESOURCE_A,
        "--client-id",
        client_id,
        "--secret-env",
        "TOOLS_SECRET",
    ]
    out = mcp_auth(migrated_database, *args, TOOLS_SECRET=first)
    assert out.split() == ["client_id:", client_id]  # the secret is never echoed back
    assert secret_matches(first, _stored_secret_hash(migrated_database, client_id))
    assert "add --update" in mcp_auth(migrated_database, *args, expect=1, TOOLS_SECRET=first)
    mcp_auth(migrated_database, *args, "--update", TOOLS_SECRET=second)
    assert secret_matches(second, _stored_secret_hash(migrated_database, client_id))
    assert not secret_matches(first, _stored_secret_hash(migrated_database, client_id))


def test_update_without_secret_env_keeps_the_clients_secret(migrated_database: str) -> None:
    """Issue 12: "`clients add --update` without `--secret-env` silently drops the client's secret"."""
    client_id = f"ci-{secrets.token_hex(4)}"
    args = ["clients", "add", "--resource-server", RESOURCE_A, "--client-id", client_id]
    mcp_auth(
        migrated_database, *args, "--name", "tools", "--secret-env", "TOOLS_SECRET", TOOLS_SECRET="s" * 40
    )
    out = mcp_auth(migrated_database, *args, "--name", "tools, renamed", "--update")
    assert "client_secret" not in out  # nothing new to show: the old secret stands
    assert secret_matches("s" * 40, _stored_secret_hash(migrated_database, client_id))


def test_update_of_a_public_client_to_confidential_prints_a_new_secret(migrated_database: str) -> None:
    client_id = f"ui-{secrets.token_hex(4)}"
    args = [
        "clients",
        "add",
        "--name",
        "app",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--client-id",
        client_id,
    ]
    mcp_auth(migrated_database, *args, "--public")
    assert _stored_secret_hash(migrated_database, client_id) is None
    out = mcp_auth(migrated_database, *args, "--update", "--json")
    secret = json.loads(out)["client_secret"]
    assert secret
    assert secret_matches(secret, _stored_secret_hash(migrated_database, client_id))
    mcp_auth(migrated_database, *args, "--public", "--update")  # and back: a public client has no secret
    assert _stored_secret_hash(migrated_database, client_id) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--client-id", "https://evil.example/doc.json"], "--client-id must be"),
        (["--client-id", "ok-client-id", "--secret-env", "SHORT"], "SHORT must hold a secret of at least 32"),
        (["--public", "--redirect-uri", "http://127.0.0.1/cb", "--secret-env", "LONG"], "has no secret"),
    ],
)
def test_declared_client_options_are_checked(migrated_database: str, extra: list[str], message: str) -> None:
    args = ["clients", "add", "--name", "x", *extra]
    if "--public" not in extra:
        args += ["--resource-server", RESOURCE_A]
    assert message in mcp_auth(migrated_database, *args, expect=1, SHORT="short", LONG="l" * 40)


def test_resources_list_says_where_each_row_comes_from(migrated_database: str) -> None:
    """Configured rows come from the environment of the shell running the command, not the server's."""
    mcp_auth(migrated_database, "resources", "add", "https://added.example.com/mcp", "--scope", "s")
    configured = '[{"resource": "https://configured.example.com/mcp", "scopes": ["s"]}]'
    result = subprocess.run(
        [venv_script("mcp-auth"), "resources", "list"],
        env={
            "AUTH_DATABASE_URL": migrated_database,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "AUTH_RESOURCES": configured,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sources = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert sources["https://added.example.com/mcp"] == "database"
    assert sources["https://configured.example.com/mcp"] == "AUTH_RESOURCES"
    assert "AUTH_RESOURCES come from this shell's environment" in result.stderr
    mcp_auth(migrated_database, "resources", "remove", "https://added.example.com/mcp")
