"""Settings: one clear line per bad variable, and production refusing insecure defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcp_auth_server.settings import SettingsError, load_settings

SECRET = "x" * 40
MCP_AUTH = str(Path(sys.executable).parent / "mcp-auth")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"auth_issuer": "https://auth.example.com/"}, "AUTH_ISSUER: must not end with '/'"),
        ({"auth_issuer": "auth.example.com"}, "AUTH_ISSUER: must be an absolute http(s) URL"),
        ({"auth_issuer": "https://auth.example.com?x=1"}, "AUTH_ISSUER: must have no query or fragment"),
        ({"auth_issuer": "http://auth.example.com"}, "AUTH_ISSUER: must use https unless it is a loopback"),
        ({"auth_issuer": "https://auth.example.com"}, "AUTH_UPSTREAM: set it"),
        (
            {"auth_issuer": "https://auth.example.com", "auth_upstream": "dev", "auth_secret_key": SECRET},
            "AUTH_UPSTREAM: 'dev' is refused unless AUTH_ISSUER is a loopback URL",
        ),
        (
            {
                "auth_issuer": "https://auth.example.com",
                "github_client_id": "id",
                "github_client_secret": "s",
            },
            "AUTH_SECRET_KEY: required",
        ),
        ({"auth_secret_key": "short"}, "AUTH_SECRET_KEY: must be at least 32 characters"),
        ({"auth_upstream": "github"}, "GITHUB_CLIENT_ID: the github upstream needs"),
        ({"auth_resources": "[not json"}, "AUTH_RESOURCES: must be a JSON list of resources"),
        ({"auth_resources": '[{"resource": "http://x/mcp", "scopes": []}]'}, "AUTH_RESOURCES:"),
        # Issue 14, finding 6: each problem names the entry and the field.
        (
            {"auth_resources": '[{"resource": "http://x/mcp"}]'},
            "AUTH_RESOURCES: entry 0 (http://x/mcp): scopes: missing",
        ),
        (
            {"auth_resources": '[{"resource": "http://x/mcp", "scopes": ["a"], "default_scope": ["a"]}]'},
            "AUTH_RESOURCES: entry 0 (http://x/mcp): default_scope: not a field of a resource",
        ),
        (
            {
                "auth_resources": '[{"resource": "http://x/a", "scopes": ["a"]},'
                ' {"resource": "http://x/b/", "scopes": ["a"]}]'
            },
            "AUTH_RESOURCES: entry 1 (http://x/b/): resource: must not end with '/'",
        ),
        (
            {
                "auth_resources": '[{"resource": "http://x/mcp", "scopes": ["a"], "aliases": ["http://x/sse"]},'
                ' {"resource": "http://x/sse", "scopes": ["a"]}]'
            },
            "AUTH_RESOURCES: entry 1 (http://x/sse): http://x/sse is named by an earlier entry",
        ),
        ({"auth_resources": '{"resource": "http://x/mcp"}'}, "AUTH_RESOURCES: must be a JSON list"),
        ({"auth_access_token_ttl": "soon"}, "AUTH_ACCESS_TOKEN_TTL:"),
        ({"auth_upstream": "ldap"}, "AUTH_UPSTREAM:"),
        (
            {
                "auth_issuer": "https://auth.example.com",
                "github_client_id": "id",
                "github_client_secret": "s",
                # .env.example's placeholder, copied as is into a production configuration.
                "auth_secret_key": "change-me-to-48-random-characters-before-any-real-use",
            },
            "AUTH_SECRET_KEY: still the example's placeholder",
        ),
        (
            {
                "auth_issuer": "https://auth.example.com",
                "github_client_id": "id",
                "github_client_secret": "s",
                "auth_secret_key": "dev-only-placeholder-secret-key-not-for-production",
            },
            "AUTH_SECRET_KEY: still the example's placeholder",
        ),
        ({"auth_metrics_port": "9000"}, "AUTH_METRICS_PORT: must differ from the public port 9000"),
        ({"auth_database_url": "mysql://u@h/d"}, "AUTH_DATABASE_URL: unsupported database 'mysql'"),
    ],
)
def test_bad_setting_names_the_variable_in_one_line(overrides: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_production_settings_with_everything_given_are_accepted() -> None:
    settings = load_settings(
        auth_issuer="https://auth.example.com",
        github_client_id="id",
        github_client_secret="s",
        auth_secret_key=SECRET,
        auth_allowed_orgs="acme, widgets",
    )
    assert settings.auth_upstream == "github"
    assert settings.auth_allowed_orgs == ["acme", "widgets"]
    assert settings.upstream_scopes == "read:user user:email read:org"
    assert settings.resources == []  # no example resources outside loopback
    assert settings.port == 443


def test_loopback_issuer_defaults_to_dev_upstream_and_example_resources() -> None:
    settings = load_settings(auth_issuer="http://127.0.0.1:9000")
    assert settings.auth_upstream == "dev"
    assert [r.resource for r in settings.resources] == [
        "http://127.0.0.1:9101/mcp",
        "http://127.0.0.1:9102/mcp",
    ]


def test_serve_prints_one_line_and_exits_2_on_a_bad_setting() -> None:
    result = subprocess.run(
        [MCP_AUTH, "serve"],
        env={"AUTH_ISSUER": "https://auth.example.com/", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "mcp-auth: AUTH_ISSUER: must not end with '/', got 'https://auth.example.com/'"
    )


def test_placeholder_secret_is_accepted_on_a_loopback_issuer() -> None:
    """Compose as shipped (http://localhost:9000) is a local run; the refusal is for production."""
    settings = load_settings(
        auth_issuer="http://localhost:9000",
        auth_secret_key="change-me-to-48-random-characters-before-any-real-use",
        auth_database_url="postgres://u@db/auth",
    )
    assert settings.database_url == "postgresql+asyncpg://u@db/auth"
