"""Settings: one clear line per bad variable, and production refusing insecure defaults."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_auth_server import settings as settings_module
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


# --- The generated local secret file (issue 12: "written before its mode is set to 0600") ---------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(settings_module, "DATA_DIR", tmp_path / ".data")
    previous = os.umask(0)  # the worst umask: whatever mode the file is created with, it keeps
    yield tmp_path / ".data"
    os.umask(previous)


def test_local_secret_file_is_never_readable_by_others_not_even_for_a_moment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_dir / "secret_key"
    created: list[tuple[int, int]] = []
    real_open, real_link = os.open, os.link

    def recording_open(file: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        created.append((flags, mode))
        return real_open(file, flags, mode, **kwargs)

    def checking_link(source: Any, destination: Any, **kwargs: Any) -> None:
        # The moment the secret's name appears, its file is already private and complete.
        assert not path.exists()
        assert stat.S_IMODE(os.stat(source).st_mode) == 0o600
        assert len(Path(source).read_text()) >= 32
        real_link(source, destination, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "link", checking_link)
    secret = settings_module._local_secret_key()
    assert [(flags & (os.O_CREAT | os.O_EXCL), mode) for flags, mode in created] == [
        (os.O_CREAT | os.O_EXCL, 0o600)
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["secret_key"]  # no temporary file left behind
    assert settings_module._local_secret_key() == secret  # generated once, read afterwards


def test_local_secret_file_created_by_another_process_meanwhile_is_the_one_used(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_dir / "secret_key"
    real_link = os.link

    def other_process_wins(source: Any, destination: Any, **kwargs: Any) -> None:
        path.write_text("the-other-process-secret-of-at-least-32-chars")
        real_link(source, destination, **kwargs)

    monkeypatch.setattr(os, "link", other_process_wins)
    assert settings_module._local_secret_key() == b"the-other-process-secret-of-at-least-32-chars"
    assert [p.name for p in data_dir.iterdir()] == ["secret_key"]
