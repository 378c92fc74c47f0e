"""Publishes RFC 9728 protected-resource metadata: how an MCP client learns which auth service to use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.routes import cors_middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_path(resource_url: str) -> str:
    """RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path."""
    path = urlsplit(resource_url).path
    return WELL_KNOWN + ("" if path == "/" else path)


def metadata_url(resource_url: str) -> str:
    """The absolute metadata URL that challenges carry in `resource_metadata` (RFC 9728 §5.1)."""
    parts = urlsplit(resource_url)
    return f"{parts.scheme}://{parts.netloc}{metadata_path(resource_url)}"


def protected_resource_metadata(
    *,
    resource_url: str,
    issuer: str,
    scopes_supported: Sequence[str],
    resource_name: str | None = None,
    dpop_algorithms: Sequence[str] = (),
    dpop_required: bool = False,
) -> dict[str, Any]:
    """The RFC 9728 §2 document. Strings are used verbatim: clients compare them byte for byte."""
    document: dict[str, Any] = {
        "resource": resource_url,  # RFC 9728 §3.3: must equal the URL the client used
        "authorization_servers": [issuer],
        # offline_access is the client's to ask the authorization server for, never a resource scope.
        "scopes_supported": [scope for scope in scopes_supported if scope != "offline_access"],
        "bearer_methods_supported": ["header"],  # MCP: tokens only in the Authorization header
    }
    if resource_name is not None:
        document["resource_name"] = resource_name
    if dpop_algorithms:
        # RFC 9728 §2 (from RFC 9449): DPoP proofs by these algorithms; whether bearer use is refused.
        document["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
        document["dpop_bound_access_tokens_required"] = dpop_required
    return document


def metadata_routes(resource_url: str, document: dict[str, Any], *, root: bool = True) -> list[Route]:
    """The document at the path-specific well-known URL and, with `root`, at the root one (clients try
    both, in order). One origin has one root document: the main resource's."""

    async def serve(_: Request) -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})

    # Browser-based clients (e.g. MCP Inspector) fetch metadata cross-origin.
    endpoint = cors_middleware(serve, ["GET", "OPTIONS"])
    paths = dict.fromkeys([metadata_path(resource_url), *([WELL_KNOWN] if root else [])])
    return [Route(path, endpoint=endpoint, methods=["GET", "OPTIONS"]) for path in paths]
