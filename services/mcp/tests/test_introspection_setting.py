"""MCP_INTROSPECTION: off by default; on only with this server's own client credentials, and it is wired."""

from __future__ import annotations

import pytest

from mcp_auth_kit import IntrospectingVerifier, JWTVerifier
from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE
from mcp_tools_server.app import create_app
from mcp_tools_server.settings import Settings, SettingsError, load_settings

BASE = {"MCP_RESOURCE_URL": "http://127.0.0.1:9101/mcp", "MCP_AUTH_ISSUER": "http://127.0.0.1:9000"}
CREDENTIALS = {"MCP_CLIENT_ID": "tools", "MCP_CLIENT_SECRET": "secret"}


def _settings(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name in ("MCP_INTROSPECTION", "MCP_AUTH", "MCP_CLIENT_ID", "MCP_CLIENT_SECRET", "MCP_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE, **variables}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_off_by_default_checks_tokens_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, **CREDENTIALS)
    assert settings.introspection == "off"
    verifier = getattr(create_app(settings).state, STATE_ATTRIBUTE).verifier
    assert type(verifier) is JWTVerifier


def test_on_introspects_as_this_servers_client(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, MCP_INTROSPECTION="on", **CREDENTIALS)
    verifier = getattr(create_app(settings).state, STATE_ATTRIBUTE).verifier
    assert isinstance(verifier, IntrospectingVerifier)


@pytest.mark.parametrize("variables", [{}, {"MCP_AUTH": "off", **CREDENTIALS}])
def test_on_needs_auth_and_credentials(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="MCP_INTROSPECTION=on needs"):
        _settings(monkeypatch, MCP_INTROSPECTION="on", **variables)


def test_only_on_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="MCP_INTROSPECTION"):
        _settings(monkeypatch, MCP_INTROSPECTION="yes", **CREDENTIALS)
