"""Builds the configured upstream connector from settings."""

from __future__ import annotations

import httpx

from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.upstreams.base import Connector
from mcp_auth_server.upstreams.dev import DevConnector
from mcp_auth_server.upstreams.github import GitHubConnector
from mcp_auth_server.upstreams.google import google_connector
from mcp_auth_server.upstreams.oidc import OidcConnector
from mcp_auth_server.upstreams.oidc_admission import Admission


def build_connector(settings: AuthSettings, http: httpx.AsyncClient) -> Connector:
    # Settings already refuse an upstream without its credentials; the asserts narrow the types.
    if settings.auth_upstream == "github":
        assert settings.github_client_id is not None
        assert settings.github_client_secret is not None
        return GitHubConnector(
            http=http,
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret.get_secret_value(),
            web_url=settings.github_url,
            api_url=settings.github_api_url,
            scopes=settings.upstream_scopes,
            allowed_users=settings.auth_allowed_users,
            allowed_orgs=settings.auth_allowed_orgs,
            allowed_teams=settings.auth_allowed_teams,
        )
    if settings.auth_upstream == "google":
        assert settings.google_client_id is not None
        assert settings.google_client_secret is not None
        return google_connector(
            http=http,
            issuer=settings.google_issuer,
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret.get_secret_value(),
            scopes=settings.google_scopes,
            hosted_domains=settings.google_hosted_domains,
            allowed_users=settings.auth_allowed_users,
            allowed_domains=settings.auth_allowed_domains,
        )
    if settings.auth_upstream == "oidc":
        assert settings.oidc_issuer is not None
        assert settings.oidc_client_id is not None
        assert settings.oidc_client_secret is not None
        return OidcConnector(
            http=http,
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            scopes=settings.oidc_scopes,
            admission=Admission.of(
                allowed_users=settings.auth_allowed_users, allowed_domains=settings.auth_allowed_domains
            ),
        )
    return DevConnector(settings.auth_issuer)
