"""The kit any MCP server uses to trust the auth service: token checks, challenges, RFC 9728 metadata.

from mcp_auth_kit import protect
app = protect(mcp_server, resource_url="https://tools.example.com/mcp", issuer="https://auth.example.com")

FastMCP servers: `protect(fastmcp_server, ...)`, or `mcp_auth_kit.fastmcp_auth.KitAuthProvider`
(`pip install "mcp-auth-kit[fastmcp]"`). The reference is the distribution's README.md.
"""

from importlib.metadata import version as _version

from mcp_auth_kit.availability import VerificationUnavailable
from mcp_auth_kit.fastapi_dependencies import ResourceAuth, require_token
from mcp_auth_kit.guard import BearerGuard
from mcp_auth_kit.jwks import JWKSCache
from mcp_auth_kit.observability import ObservabilityMiddleware, metrics_endpoint, setup_json_logging
from mcp_auth_kit.protect import protect
from mcp_auth_kit.rfc6750_challenges import www_authenticate
from mcp_auth_kit.rfc7662_introspection import IntrospectingVerifier, Introspection, IntrospectionUnavailable
from mcp_auth_kit.rfc8693_upstream_tokens import UpstreamTokenClient, UpstreamTokenError
from mcp_auth_kit.rfc9068_verifier import InvalidToken, JWTVerifier
from mcp_auth_kit.rfc9728_metadata import protected_resource_metadata
from mcp_auth_kit.tool_scopes import ScopePolicy

__version__ = _version("mcp-auth-kit")

__all__ = [
    "BearerGuard",
    "IntrospectingVerifier",
    "Introspection",
    "IntrospectionUnavailable",
    "InvalidToken",
    "JWKSCache",
    "JWTVerifier",
    "ObservabilityMiddleware",
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
