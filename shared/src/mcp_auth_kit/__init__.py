"""The kit any MCP server uses to trust the auth service: token checks, challenges, RFC 9728 metadata.

from mcp_auth_kit import protect
app = protect(mcp_server, resource_url="https://tools.example.com/mcp", issuer="https://auth.example.com")

FastMCP servers: `protect(fastmcp_server, ...)`, or `mcp_auth_kit.fastmcp_auth.KitAuthProvider`
(`pip install "mcp-auth-kit[fastmcp]"`). The reference is the distribution's README.md.

Names are imported on first use: `import mcp_auth_kit.observability` (the auth service's logging and
metrics) does not load the MCP SDK, and a command can prepare prometheus-client's multiprocess
directory before any metric exists.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_auth_kit.availability import VerificationUnavailable
    from mcp_auth_kit.client_credentials import ClientCredentials, PrivateKeyJWT
    from mcp_auth_kit.dpop_client import DPoPAuth, DPoPKey
    from mcp_auth_kit.fastapi_dependencies import ResourceAuth, require_token
    from mcp_auth_kit.guard import BearerGuard
    from mcp_auth_kit.jwks import JWKSCache
    from mcp_auth_kit.observability import ObservabilityMiddleware, metrics_endpoint, setup_json_logging
    from mcp_auth_kit.operator_port import OperatorPort
    from mcp_auth_kit.protect import protect
    from mcp_auth_kit.rfc6750_challenges import www_authenticate
    from mcp_auth_kit.rfc7662_introspection import (
        IntrospectingVerifier,
        Introspection,
        IntrospectionUnavailable,
    )
    from mcp_auth_kit.rfc8693_upstream_tokens import UpstreamTokenClient, UpstreamTokenError
    from mcp_auth_kit.rfc9068_verifier import InvalidToken, JWTVerifier
    from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces
    from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProofVerifier
    from mcp_auth_kit.rfc9728_metadata import protected_resource_metadata
    from mcp_auth_kit.tool_scopes import ScopePolicy

    __version__: str

# Exported name -> the module defining it.
_EXPORTS = {
    "BearerGuard": "guard",
    "ClientCredentials": "client_credentials",
    "DPoPAuth": "dpop_client",
    "DPoPKey": "dpop_client",
    "DPoPNonces": "rfc9449_dpop_nonces",
    "DPoPProofVerifier": "rfc9449_dpop_proofs",
    "IntrospectingVerifier": "rfc7662_introspection",
    "Introspection": "rfc7662_introspection",
    "IntrospectionUnavailable": "rfc7662_introspection",
    "InvalidToken": "rfc9068_verifier",
    "JWKSCache": "jwks",
    "JWTVerifier": "rfc9068_verifier",
    "ObservabilityMiddleware": "observability",
    "PrivateKeyJWT": "client_credentials",
    "OperatorPort": "operator_port",
    "ResourceAuth": "fastapi_dependencies",
    "ScopePolicy": "tool_scopes",
    "UpstreamTokenClient": "rfc8693_upstream_tokens",
    "UpstreamTokenError": "rfc8693_upstream_tokens",
    "VerificationUnavailable": "availability",
    "metrics_endpoint": "observability",
    "protect": "protect",
    "protected_resource_metadata": "rfc9728_metadata",
    "require_token": "fastapi_dependencies",
    "setup_json_logging": "observability",
    "www_authenticate": "rfc6750_challenges",
}
__all__ = [
    "BearerGuard",
    "ClientCredentials",
    "DPoPAuth",
    "DPoPKey",
    "DPoPNonces",
    "DPoPProofVerifier",
    "IntrospectingVerifier",
    "Introspection",
    "IntrospectionUnavailable",
    "InvalidToken",
    "JWKSCache",
    "JWTVerifier",
    "ObservabilityMiddleware",
    "OperatorPort",
    "PrivateKeyJWT",
    "ResourceAuth",
    "ScopePolicy",
    "UpstreamTokenClient",
    "UpstreamTokenError",
    "VerificationUnavailable",
    "__version__",
    "metrics_endpoint",
    "protect",
    "protected_resource_metadata",
    "require_token",
    "setup_json_logging",
    "www_authenticate",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # importlib.metadata is not cheap to import either, and a command's --help never needs it.
        from importlib.metadata import version

        value: Any = version("mcp-auth-kit")
    else:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, "__version__"])
