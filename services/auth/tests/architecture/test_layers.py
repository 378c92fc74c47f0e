"""Layers depend one way: endpoints → grants/policy → store → db, with oauth/ and crypto/ underneath.

Read from the source with `ast`, so a new import that crosses a boundary fails here, not in review.
`app.py` (the composition root), `runtime.py` (the state it builds) and `cli/` may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcp_auth_server

PACKAGE = Path(mcp_auth_server.__file__).parent
HTTP_FRAMEWORKS = ("starlette", "fastapi")
ABOVE = {
    # layer: the packages of ours it must not import
    "oauth": ("store", "grants", "policy", "endpoints", "web", "upstreams", "runtime", "db", "app", "cli"),
    "crypto": ("store", "grants", "policy", "endpoints", "web", "upstreams", "runtime", "db", "app", "cli"),
    "db": ("store", "grants", "policy", "endpoints", "web", "upstreams", "runtime", "app", "cli"),
    "store": ("grants", "policy", "endpoints", "web", "app", "cli"),
    "upstreams": ("store", "grants", "policy", "endpoints", "web", "app", "cli"),
    "policy": ("endpoints", "web", "app", "cli"),
    "grants": ("endpoints", "web", "app", "cli"),
}


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def ours(name: str) -> str | None:
    """The first segment below mcp_auth_server of an import of ours (`store` for `...store.grants`)."""
    parts = name.split(".")
    return parts[1] if parts[0] == "mcp_auth_server" and len(parts) > 1 else None


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_layer_imports_a_layer_above_it(layer: str) -> None:
    crossings = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules(layer)
        for name in imported(path)
        if ours(name) in ABOVE[layer]
    ]
    assert not crossings, crossings


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_nothing_below_the_endpoints_knows_http(layer: str) -> None:
    crossings = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules(layer)
        for name in imported(path)
        if name.split(".")[0] in HTTP_FRAMEWORKS
    ]
    assert not crossings, crossings


def test_the_store_raises_no_oauth_errors() -> None:
    """Storage answers with values and its own exceptions; what the client is told is decided above it."""
    crossings = [
        str(path.relative_to(PACKAGE))
        for path in modules("store")
        if "mcp_auth_server.oauth.errors" in imported(path)
    ]
    assert not crossings, crossings


def test_the_layers_checked_exist() -> None:
    assert all(modules(layer) for layer in ABOVE)  # a renamed package must not pass silently
