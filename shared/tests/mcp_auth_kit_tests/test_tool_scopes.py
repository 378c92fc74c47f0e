"""Which scopes a request needs: from routing headers when the SDK checks them, else from the body."""

from __future__ import annotations

import base64

import pytest
from starlette.datastructures import Headers

from mcp_auth_kit import ScopePolicy
from mcp_auth_kit.tool_scopes import tools_called_in_body, tools_named_in_headers, uses_routing_headers

POLICY = ScopePolicy(
    base=("mcp:tools",), tools={"repos": ("github:repos",), "admin": ("github:repos", "admin")}
)


def test_required_scopes_are_base_plus_each_tool_without_duplicates() -> None:
    assert POLICY.required([]) == ["mcp:tools"]
    assert POLICY.required(["unknown"]) == ["mcp:tools"]
    assert POLICY.required(["repos", "admin"]) == ["mcp:tools", "github:repos", "admin"]
    assert POLICY.every_scope() == ["mcp:tools", "github:repos", "admin"]


@pytest.mark.parametrize(
    ("version", "modern"),
    [(None, False), ("2025-06-18", False), ("2025-11-25", False), ("2026-07-28", True), ("2099-01-01", True)],
)
def test_routing_headers_are_used_exactly_when_the_sdk_routes_to_its_modern_path(
    version: str | None, modern: bool
) -> None:
    headers = Headers({"mcp-protocol-version": version} if version else {})
    assert uses_routing_headers(headers) is modern


@pytest.mark.parametrize(
    ("headers", "tools"),
    [
        ({"mcp-method": "tools/call", "mcp-name": "repos"}, ["repos"]),
        (
            {
                "mcp-method": "tools/call",
                "mcp-name": "=?base64?" + base64.b64encode(b"admin").decode() + "?=",
            },
            ["admin"],
        ),
        ({"mcp-method": "tools/call", "mcp-name": "=?base64?!!!?="}, []),
        ({"mcp-method": "tools/list", "mcp-name": "repos"}, []),
        ({"mcp-method": "tools/call"}, []),
    ],
)
def test_tools_named_in_headers(headers: dict[str, str], tools: list[str]) -> None:
    assert tools_named_in_headers(Headers(headers)) == tools


@pytest.mark.parametrize(
    ("body", "tools"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"repos"}}', ["repos"]),
        (
            b'[{"method":"tools/call","params":{"name":"repos"}},{"method":"tools/call","params":{"name":"x"}}]',
            ["repos", "x"],
        ),
        (b'{"method":"tools/list"}', []),
        (b'{"method":"tools/call","params":{"name":7}}', []),
        (b'{"method":"tools/call","params":["repos"]}', []),
        (
            b'{"method":"tools/call","params":{"name":"x","name":"admin"}}',
            ["admin"],
        ),  # the SDK's parser: last wins
        (b"not json", ["repos", "admin"]),  # fail closed
        (b'"a string"', []),
    ],
)
def test_tools_called_in_body(body: bytes, tools: list[str]) -> None:
    assert tools_called_in_body(body, ["repos", "admin"]) == tools
