"""Decides which scopes an MCP request needs: the server's base scopes plus those of every tool it calls.

A 2026-07-28 request names its method and tool in `Mcp-Method`/`Mcp-Name` headers, which the SDK
checks against the body before dispatching (`mcp.shared.inbound.classify_inbound_request`, rung 2),
so the headers can be trusted without reading the body. Older requests (and the legacy SSE
transport) only say it in the JSON-RPC body, parsed here with the same parser the SDK uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    decode_header_value,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers

TOOLS_CALL = "tools/call"


@dataclass(frozen=True)
class ScopePolicy:
    """Scopes every request needs, and the extra scopes per tool (MCP step-up authorization)."""

    base: tuple[str, ...]
    tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def required(self, tool_names: Iterable[str]) -> list[str]:
        """Every scope the request needs (not just the missing ones), base first, without duplicates."""
        scopes = dict.fromkeys(self.base)
        for name in tool_names:
            scopes.update(dict.fromkeys(self.tools.get(name, ())))
        return list(scopes)

    def every_scope(self) -> list[str]:
        return self.required(self.tools)


def uses_routing_headers(headers: Headers) -> bool:
    """Whether the SDK routes this request as 2026-07-28+ (same test as `StreamableHTTPSessionManager`)."""
    version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
    return version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS


def tools_named_in_headers(headers: Headers) -> list[str]:
    """The tool a 2026-07-28 `tools/call` names in `Mcp-Name` (which may be base64-wrapped)."""
    if headers.get(MCP_METHOD_HEADER) != TOOLS_CALL:
        return []
    name = decode_header_value(headers.get(MCP_NAME_HEADER))
    return [name] if name is not None else []


def tools_called_in_body(body: bytes, all_tools: Sequence[str]) -> list[str]:
    """The tools a JSON-RPC message (or batch) calls; an unparseable body is assumed to call them all."""
    try:
        message: Any = pydantic_core.from_json(body)
    except ValueError:
        return list(all_tools)  # fail closed: the guard must never know less than the SDK will
    messages = message if isinstance(message, list) else [message]
    names: list[str] = []
    for item in messages:
        if isinstance(item, dict) and item.get("method") == TOOLS_CALL:
            params = item.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names
