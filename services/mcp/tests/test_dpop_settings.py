"""MCP_DPOP, MCP_DPOP_NONCE_SECRET, MCP_REDIS_URL: read, checked, and wired into the kit."""

from __future__ import annotations

import pytest

from mcp_auth_kit.fastapi_dependencies import STATE_ATTRIBUTE
from mcp_auth_kit.replay_cache import MemoryReplayCache, RedisReplayCache
from mcp_tools_server.app import create_app
from mcp_tools_server.settings import Settings, SettingsError, load_settings

BASE = {"MCP_RESOURCE_URL": "http://127.0.0.1:9101/mcp", "MCP_AUTH_ISSUER": "http://127.0.0.1:9000"}
VARIABLES = (
    "MCP_DPOP",
    "MCP_DPOP_NONCE_SECRET",
    "MCP_REDIS_URL",
    "MCP_AUTH",
    "MCP_CLIENT_ID",
    "MCP_CLIENT_SECRET",
)


def _settings(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE, **variables}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_dpop_is_allowed_by_default_without_nonces_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    dpop = getattr(create_app(settings).state, STATE_ATTRIBUTE).dpop
    assert dpop.mode == "allowed"
    assert dpop.nonce() is None
    assert isinstance(dpop.verifier._replay, MemoryReplayCache)


def test_required_nonces_and_shared_replay_are_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        MCP_DPOP="required",
        MCP_DPOP_NONCE_SECRET="s" * 32,
        MCP_REDIS_URL="redis://127.0.0.1:6379/0",
    )
    dpop = getattr(create_app(settings).state, STATE_ATTRIBUTE).dpop
    assert dpop.required
    assert dpop.nonce() is not None
    assert isinstance(dpop.verifier._replay, RedisReplayCache)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"MCP_DPOP": "sometimes"}, "MCP_DPOP:"),
        ({"MCP_DPOP_NONCE_SECRET": "short"}, "MCP_DPOP_NONCE_SECRET: must be at least 32 characters"),
    ],
)
def test_bad_dpop_settings_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        _settings(monkeypatch, **variables)
    assert "short" not in str(refused.value)  # a secret's value never reaches a log
