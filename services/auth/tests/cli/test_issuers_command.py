"""`mcp-auth issuers add/list/pin/remove` and `clients add --jwt-bearer`, as an operator runs them, and
AUTH_TRUSTED_ISSUERS mistakes stopping start-up with one line naming the entry."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from mcp_auth_server.errors import ConfigurationError
from mcp_auth_server.settings import load_settings
from mcp_testing.processes import venv_script

from ..conftest import RESOURCE_A, TEST_SECRET
from .test_admin_commands import mcp_auth

SYMMETRIC_KEY = {"kty": "oct", "k": "c2VjcmV0", "kid": "1"}
ISSUER = f"https://idp-{uuid.uuid4().hex[:8]}.example.com"


def test_issuers_add_list_pin_remove(migrated_database: str) -> None:
    added = mcp_auth(
        migrated_database, "issuers", "add", ISSUER, "--kind", "enterprise-idp", "--user-claim", "email"
    )
    assert added.strip() == f"trusted issuer {ISSUER}: enterprise-idp"
    workload = ISSUER.replace("idp-", "k8s-")
    mcp_auth(
        migrated_database,
        *("issuers", "add", workload, "--kind", "workload", "--jwks-uri", f"{workload}/openid/v1/jwks"),
        *("--subject", "system:serviceaccount:agents:*", "--resource", RESOURCE_A, "--scope", "mcp:tools"),
        "--reusable",
    )
    listing = mcp_auth(migrated_database, "issuers", "list")
    assert listing.splitlines()[0].split() == ["ISSUER", "KIND", "SOURCE", "KEYS", "RULES"]
    assert f"system:serviceaccount:agents:* -> {RESOURCE_A}" in listing
    assert "user by email; 0 pinned" in listing
    # An admin pins a person at the IdP to a user here: only to a user that exists.
    error = mcp_auth(
        migrated_database, "issuers", "pin", ISSUER, "bob@acme.example", "no-such-user", expect=1
    )
    assert "no user no-such-user" in error
    error = mcp_auth(migrated_database, "issuers", "pin", "https://unknown.example", "x", "y", expect=1)
    assert "AUTH_TRUSTED_ISSUERS" in error
    for issuer in (ISSUER, workload):
        assert mcp_auth(migrated_database, "issuers", "remove", issuer).strip() == f"removed {issuer}"
    assert ISSUER not in mcp_auth(migrated_database, "issuers", "list")
    mcp_auth(migrated_database, "issuers", "remove", ISSUER, expect=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "workload"), "needs --subject"),
        (("--kind", "enterprise-idp", "--algorithm", "HS256"), "algorithms: must list asymmetric"),
        (
            ("--kind", "enterprise-idp", "--jwks-uri", "http://keys.example.com/jwks"),
            "jwks_uri: must be https",
        ),
    ],
)
def test_issuers_add_refuses_what_the_environment_would(
    migrated_database: str, args: tuple[str, ...], message: str
) -> None:
    error = mcp_auth(migrated_database, "issuers", "add", ISSUER, *args, expect=1)
    assert message in error, error


def test_clients_add_jwt_bearer_registers_a_confidential_client_for_the_grant(migrated_database: str) -> None:
    created = json.loads(
        mcp_auth(migrated_database, "clients", "add", "--name", "Enterprise", "--jwt-bearer", "--json")
    )
    assert created["client_secret"]
    mcp_auth(migrated_database, "clients", "add", "--name", "X", "--public", "--jwt-bearer", expect=1)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            '[{"issuer": "http://idp.example.com", "kind": "enterprise-idp"}]',
            "entry 0 (http://idp.example.com): issuer: must be https",
        ),
        (
            '[{"issuer": "https://idp.example.com", "kind": "idp"}]',
            "entry 0 (https://idp.example.com): kind:",
        ),
        ('[{"issuer": "https://k.example", "kind": "workload"}]', "a workload issuer needs subjects"),
        (
            json.dumps(
                [{"issuer": "https://i.example", "kind": "enterprise-idp", "jwks": {"keys": [SYMMETRIC_KEY]}}]
            ),
            "private or symmetric",
        ),
        ('{"issuer": "https://i.example"}', "must be a JSON list"),
        ("[{", "must be a JSON list of trusted issuers"),
    ],
)
def test_a_misconfigured_entry_stops_start_up_with_one_line_naming_it(entries: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            auth_issuer="https://auth.example.com",
            auth_secret_key=TEST_SECRET,
            auth_database_url="postgresql://x@localhost/x",
            auth_upstream="github",
            github_client_id="id",
            github_client_secret="secret",
            auth_trusted_issuers=entries,
        )
    assert str(raised.value).startswith("AUTH_TRUSTED_ISSUERS: "), raised.value
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_serve_refuses_to_start_on_a_misconfigured_entry(migrated_database: str) -> None:
    result = subprocess.run(
        [venv_script("mcp-auth"), "serve"],
        env={
            "AUTH_DATABASE_URL": migrated_database,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "AUTH_TRUSTED_ISSUERS": '[{"issuer": "https://idp.example.com", "kind": "workload"}]',
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mcp-auth: AUTH_TRUSTED_ISSUERS: entry 0 (https://idp.example.com): "
        "entry: a workload issuer needs subjects: {pattern: {resource, scopes}}"
    ]
