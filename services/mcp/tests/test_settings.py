"""Settings: every variable read by its exact name, and each bad value refused in one line that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_auth_kit import DPoPKey
from mcp_tools_server.settings import SettingsError, load_settings

RESOURCE = "http://127.0.0.1:9101/mcp"
ISSUER = "http://127.0.0.1:9000"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a value under test, not a bind


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MCP_RESOURCE_URL",
        "MCP_AUTH_ISSUER",
        "MCP_CLIENT_ID",
        "MCP_CLIENT_SECRET",
        "MCP_CLIENT_PRIVATE_KEY_FILE",
        "MCP_CLIENT_KEY_ID",
        "MCP_GITHUB_API_URL",
        "MCP_AUTH",
        "MCP_HOST",
        "MCP_PORT",
        "MCP_METRICS_PORT",
        "MCP_AUTH_INTERNAL_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _refusal(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_every_variable_is_read_by_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_RESOURCE_URL", "https://tools.example.com/mcp")
    monkeypatch.setenv("MCP_AUTH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("MCP_CLIENT_ID", "tools-server")
    monkeypatch.setenv("MCP_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("MCP_GITHUB_API_URL", "https://ghe.example.com/api/v3")
    monkeypatch.setenv("MCP_HOST", ALL_INTERFACES)
    monkeypatch.setenv("MCP_PORT", "8080")
    monkeypatch.setenv("MCP_METRICS_PORT", "9090")
    monkeypatch.setenv("MCP_AUTH_INTERNAL_URL", "http://mcp-auth-server:9000")

    settings = load_settings()

    assert settings.resource_url == "https://tools.example.com/mcp"
    assert settings.auth_issuer == "https://auth.example.com"
    assert settings.client_id == "tools-server"
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "s3cret"
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.auth_enabled
    assert (settings.host, settings.listen_port) == (ALL_INTERFACES, 8080)
    assert settings.metrics_port == 9090
    assert settings.auth_internal_url == "http://mcp-auth-server:9000"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_RESOURCE_URL", RESOURCE)
    monkeypatch.setenv("MCP_AUTH_ISSUER", ISSUER)

    settings = load_settings()

    assert settings.github_api_url == "https://api.github.com"
    assert settings.auth_enabled
    assert (settings.host, settings.listen_port) == ("127.0.0.1", 9101)
    assert settings.client_id is None


@pytest.mark.parametrize(("url", "port"), [("https://tools.example.com/mcp", 443), ("http://tools/mcp", 80)])
def test_the_port_defaults_to_the_resource_urls(monkeypatch: pytest.MonkeyPatch, url: str, port: int) -> None:
    monkeypatch.setenv("MCP_RESOURCE_URL", url)
    monkeypatch.setenv("MCP_AUTH_ISSUER", ISSUER)
    assert load_settings().listen_port == port


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:9000", "http://127.0.0.1:9000/", "https://auth.example.com/t"]
)
def test_the_issuer_is_kept_exactly(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("MCP_RESOURCE_URL", RESOURCE)
    monkeypatch.setenv("MCP_AUTH_ISSUER", issuer)
    assert load_settings().auth_issuer == issuer


def test_resource_url_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, MCP_AUTH_ISSUER=ISSUER)
    assert message.startswith("MCP_RESOURCE_URL: missing; expected this server's canonical MCP URL")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("tools.example.com/mcp", "not an absolute http(s) URL"),
        (RESOURCE + "#x", "must not contain a query, fragment or user name"),
        (RESOURCE + "?x=1", "must not contain a query, fragment or user name"),
        ("http://me@127.0.0.1:9101/mcp", "must not contain a query, fragment or user name"),
        ("http://127.0.0.1:9101/", "needs a path: the MCP endpoint is served there"),
        ("http://127.0.0.1:9101", "needs a path: the MCP endpoint is served there"),
    ],
)
def test_resource_url_must_be_an_absolute_url(monkeypatch: pytest.MonkeyPatch, url: str, reason: str) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=url, MCP_AUTH_ISSUER=ISSUER)
    assert message.startswith(f"MCP_RESOURCE_URL: {reason} (got '{url}')")


def test_the_issuer_is_required_while_auth_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE)
    assert message.startswith("MCP_AUTH_ISSUER: missing; required while MCP_AUTH=on")


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("auth.example.com", "not an absolute http(s) URL"),
        ("ftp://auth", "not an absolute http(s) URL"),
        ("https://auth.example.com?tenant=1", "must not contain a query or fragment"),
    ],
)
def test_the_issuer_must_be_an_http_url(monkeypatch: pytest.MonkeyPatch, issuer: str, reason: str) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=issuer)
    assert message.startswith(
        f"MCP_AUTH_ISSUER: {reason} (got '{issuer}'); expected the auth service's issuer"
    )


def test_github_api_url_must_be_an_absolute_url(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(
        monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_GITHUB_API_URL="api"
    )
    assert message.startswith("MCP_GITHUB_API_URL: not an absolute http(s) URL (got 'api')")


def test_auth_is_on_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_AUTH="maybe")
    assert message.startswith("MCP_AUTH: Input should be 'on' or 'off' (got 'maybe')")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_auth_off_is_allowed_on_loopback_without_an_issuer(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("MCP_RESOURCE_URL", RESOURCE)
    monkeypatch.setenv("MCP_AUTH", "off")
    monkeypatch.setenv("MCP_HOST", host)
    assert not load_settings().auth_enabled


@pytest.mark.parametrize("host", [ALL_INTERFACES, "::", "10.0.0.5", "tools.example.com"])
def test_auth_off_is_refused_off_loopback(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH="off", MCP_HOST=host)
    assert message == (
        "MCP_AUTH=off is refused unless MCP_HOST is a loopback address (127.0.0.1, ::1 or localhost);"
        f" got '{host}'"
    )


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_port_must_be_a_port_number(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_PORT=port)
    assert message.startswith("MCP_PORT: ")
    assert message.endswith(f"(got '{port}'); expected a TCP port number (1-65535)")


def test_host_must_not_be_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_HOST=" ")
    assert message.startswith("MCP_HOST: is empty")


CLIENT_PAIRS = "MCP_CLIENT_ID with MCP_CLIENT_SECRET or MCP_CLIENT_PRIVATE_KEY_FILE: set the id and one of"


@pytest.mark.parametrize(
    "variables",
    [
        {"MCP_CLIENT_ID": "x"},
        {"MCP_CLIENT_SECRET": "x"},
        {"MCP_CLIENT_PRIVATE_KEY_FILE": "/k.pem"},
        {"MCP_CLIENT_ID": "x", "MCP_CLIENT_SECRET": "x", "MCP_CLIENT_PRIVATE_KEY_FILE": "/k.pem"},
    ],
)
def test_client_credentials_come_in_pairs(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    message = _refusal(monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, **variables)
    assert message.startswith(CLIENT_PAIRS)


def test_an_unusable_private_key_file_stops_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("not a key")
    for path in (str(tmp_path / "key.pem"), str(tmp_path / "missing.pem")):
        message = _refusal(
            monkeypatch,
            MCP_RESOURCE_URL=RESOURCE,
            MCP_AUTH_ISSUER=ISSUER,
            MCP_CLIENT_ID="tools",
            MCP_CLIENT_PRIVATE_KEY_FILE=path,
        )
        assert message.startswith(f"MCP_CLIENT_PRIVATE_KEY_FILE: cannot use {path} ("), message


def test_a_private_key_file_makes_the_client_authenticate_with_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = DPoPKey.generate("ES256")
    (tmp_path / "key.pem").write_bytes(key.private_key_pem())
    for name, value in {
        "MCP_RESOURCE_URL": RESOURCE,
        "MCP_AUTH_ISSUER": ISSUER,
        "MCP_CLIENT_ID": "tools",
        "MCP_CLIENT_PRIVATE_KEY_FILE": str(tmp_path / "key.pem"),
        "MCP_CLIENT_KEY_ID": "tools-2026",
    }.items():
        monkeypatch.setenv(name, value)
    credentials = load_settings().client_credentials()
    assert credentials is not None
    assert credentials.secret is None
    assert credentials.private_key is not None
    assert credentials.private_key.key_id == "tools-2026"


def test_several_problems_are_reported_together_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, MCP_AUTH="maybe", MCP_PORT="x")
    assert message.count("; expected") == 3
    assert [part.split(":")[0] for part in message.split("; ") if part.startswith("MCP_")] == [
        "MCP_RESOURCE_URL",
        "MCP_AUTH",
        "MCP_PORT",
    ]


def test_metrics_stay_off_the_public_port(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(
        monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_METRICS_PORT="9101"
    )
    assert message == "MCP_METRICS_PORT must differ from the public port 9101"


@pytest.mark.parametrize("url", ["mcp-auth-server:9000", "http://mcp-auth-server:9000/auth", "ftp://h:1"])
def test_internal_url_is_scheme_host_and_port(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = _refusal(
        monkeypatch, MCP_RESOURCE_URL=RESOURCE, MCP_AUTH_ISSUER=ISSUER, MCP_AUTH_INTERNAL_URL=url
    )
    assert message.startswith("MCP_AUTH_INTERNAL_URL: ")
