"""Authorization server metadata (RFC 8414 §2), every URL derived from AUTH_ISSUER only.

Never from request headers: a spoofed Host or X-Forwarded-* must not change what we advertise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_auth_server.oauth.rfc7523_client_assertions import ALGORITHMS as ASSERTION_ALGORITHMS

GRANT_TYPES = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    # RFC 7523 §2.1: ID-JAGs from trusted enterprise IdPs and workload tokens from trusted issuers.
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
]
# draft-ietf-oauth-identity-assertion-authz-grant §"Resource Authorization Server Metadata": we process
# ID-JAGs (it says nothing about which issuers are trusted, and must not).
AUTHORIZATION_GRANT_PROFILES = ["urn:ietf:params:oauth:grant-profile:id-jag"]
CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
# Resource-server clients (introspection) authenticate; they have a secret or keys.
INTROSPECTION_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def authorization_server_metadata(
    issuer: str,
    scopes: list[str],
    *,
    client_metadata_documents: bool = True,
    registration: bool = True,
    dpop_algorithms: Sequence[str] = (),
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "jwks_uri": f"{issuer}/jwks.json",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": INTROSPECTION_AUTH_METHODS,
        # RFC 8414 §2: the algorithms private_key_jwt assertions (RFC 7523 §2.2) may be signed with.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207 §3: we send `iss` on every authorization response.
        "authorization_response_iss_parameter_supported": True,
        # draft-ietf-oauth-client-id-metadata-document §5: https client_ids are fetched, with `none` auth.
        "client_id_metadata_document_supported": client_metadata_documents,
        "authorization_grant_profiles_supported": AUTHORIZATION_GRANT_PROFILES,
    }
    if dpop_algorithms:
        # RFC 9449 §5.1: DPoP is supported, with proofs signed by these algorithms.
        document["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
    if not registration:
        del document["registration_endpoint"]
    return document
