"""RFC 9728 metadata: the well-known location and the document, with every string used verbatim."""

from __future__ import annotations

import pytest

from mcp_auth_kit import protected_resource_metadata
from mcp_auth_kit.rfc9728_metadata import metadata_path, metadata_url


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("http://127.0.0.1:9101/mcp", "http://127.0.0.1:9101/.well-known/oauth-protected-resource/mcp"),
        ("https://t.example/a/b/mcp", "https://t.example/.well-known/oauth-protected-resource/a/b/mcp"),
        ("https://t.example/", "https://t.example/.well-known/oauth-protected-resource"),
    ],
)
def test_metadata_url_inserts_the_well_known_suffix_before_the_path(resource: str, url: str) -> None:
    assert metadata_url(resource) == url
    assert url.endswith(metadata_path(resource))


def test_document_is_exact() -> None:
    document = protected_resource_metadata(
        resource_url="http://127.0.0.1:9101/mcp",
        issuer="http://127.0.0.1:9000",
        scopes_supported=["mcp:tools", "offline_access", "github:repos"],
        resource_name="GitHub tools",
    )
    assert document == {
        "resource": "http://127.0.0.1:9101/mcp",
        "authorization_servers": ["http://127.0.0.1:9000"],
        "scopes_supported": ["mcp:tools", "github:repos"],
        "bearer_methods_supported": ["header"],
        "resource_name": "GitHub tools",
    }


def test_resource_name_is_optional() -> None:
    document = protected_resource_metadata(
        resource_url="http://h/mcp", issuer="http://i", scopes_supported=[]
    )
    assert "resource_name" not in document


def test_dpop_support_is_published_with_whether_it_is_required() -> None:
    for required in (True, False):
        document = protected_resource_metadata(
            resource_url="http://h/mcp",
            issuer="http://i",
            scopes_supported=[],
            dpop_algorithms=["ES256", "EdDSA"],
            dpop_required=required,
        )
        assert document["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA"]
        assert document["dpop_bound_access_tokens_required"] is required
