"""The per-resource DPoP policy, as an operator sets it: AUTH_RESOURCES and `mcp-auth resources add`."""

from __future__ import annotations

import pytest

from mcp_auth_server.settings import SettingsError, load_settings

from ..cli.test_admin_commands import mcp_auth
from ..conftest import TEST_SECRET


def test_a_resource_is_dpop_allowed_unless_configured_required() -> None:
    settings = load_settings(
        auth_secret_key=TEST_SECRET,
        auth_resources='[{"resource": "http://127.0.0.1:9101/mcp", "scopes": ["a"]},'
        ' {"resource": "http://127.0.0.1:9102/mcp", "scopes": ["a"], "dpop": "required"}]',
    )
    assert [resource.dpop for resource in settings.resources] == ["allowed", "required"]


def test_an_unknown_dpop_policy_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="AUTH_RESOURCES"):
        load_settings(
            auth_secret_key=TEST_SECRET,
            auth_resources='[{"resource": "http://h/mcp", "scopes": ["a"], "dpop": "sometimes"}]',
        )


def test_resources_add_takes_a_dpop_policy(migrated_database: str) -> None:
    resource = "https://dpop-policy.example.com/mcp"
    printed = mcp_auth(migrated_database, "resources", "add", resource, "--scope", "a", "--dpop", "required")
    assert "DPoP required" in printed
    listing = mcp_auth(migrated_database, "resources", "list")
    header, row = listing.splitlines()[0], next(line for line in listing.splitlines() if resource in line)
    assert row.split()[header.split().index("DPOP")] == "required"
    mcp_auth(migrated_database, "resources", "add", resource, "--scope", "a")  # back to the default
    row = next(
        line for line in mcp_auth(migrated_database, "resources", "list").splitlines() if resource in line
    )
    assert row.split()[header.split().index("DPOP")] == "allowed"
    mcp_auth(migrated_database, "resources", "remove", resource)
