"""Trusted issuers for tests: the enterprise IdP and workload issuer stand-ins as AUTH_TRUSTED_ISSUERS
entries, a client registered for the JWT-bearer grant, and presenting an assertion at /token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_auth_server.app import create_app
from mcp_auth_server.settings import AuthSettings
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from .conftest import ISSUER, RESOURCE_A, serve_in_process
from .operator_clients import add_client

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP_CLIENT = "mcp-client-at-idp"  # the MCP client's own registration at the enterprise IdP


def idp_entry(idp: EnterpriseIdpStandIn, **fields: Any) -> dict[str, Any]:
    return {
        "issuer": idp.issuer,
        "kind": "enterprise-idp",
        "user_claim": "email",
        "name": "Acme IdP",
        **fields,
    }


def workload_entry(issuer: WorkloadIssuerStandIn, **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "issuer": issuer.issuer,
        "kind": "workload",
        "jwks_uri": issuer.jwks_uri,
        "subjects": {
            "system:serviceaccount:agents:*": {"resource": RESOURCE_A, "scopes": ["mcp:tools"]},
            "repo:acme/deploy:ref:refs/heads/main": {
                "resource": RESOURCE_A,
                "scopes": ["mcp:tools"],
                "identity": "acme-deploy",
            },
        },
    }
    return {**entry, **fields}


async def enterprise_client(
    client: httpx.AsyncClient, auth_method: str = "client_secret_basic"
) -> tuple[str, str]:
    """A confidential client an operator registered for the JWT-bearer grant (`clients add --jwt-bearer`)."""
    return await add_client(
        client,
        origin="preregistered",
        redirect_uris=[],
        token_endpoint_auth_method=auth_method,
        grant_types=[JWT_BEARER],
        client_name="Enterprise AI client",
    )


@dataclass
class Federation:
    """An auth service trusting the IdP and the workload issuer, with one enterprise client."""

    client: httpx.AsyncClient
    idp: EnterpriseIdpStandIn
    workload: WorkloadIssuerStandIn
    client_id: str
    client_secret: str

    def id_jag(self, **claims: Any) -> str:
        """An ID-JAG for our client and RESOURCE_A for alice, unless `claims` says otherwise."""
        values: dict[str, Any] = {
            "sub": "alice-at-idp",
            "audience": ISSUER,
            "client_id": self.client_id,
            "resource": RESOURCE_A,
            "scope": "mcp:tools",
            "email": "alice@acme.example",
            "email_verified": True,
        }
        values.update(claims)
        return self.idp.state.id_jag(**values)

    async def present(
        self, assertion: str, *, auth: tuple[str, str] | tuple[()] | None = None, **form: str
    ) -> httpx.Response:
        """POST the assertion to /token as the enterprise client (or `auth`, or no client when auth=())."""
        credentials = auth if auth is not None else (self.client_id, self.client_secret)
        data = {"grant_type": JWT_BEARER, "assertion": assertion, **form}
        if not credentials:
            return await self.client.post("/token", data=data)
        return await self.client.post("/token", auth=credentials, data=data)


@contextlib.asynccontextmanager
async def federation(
    make_settings: Callable[..., AuthSettings],
    idp: EnterpriseIdpStandIn,
    workload: WorkloadIssuerStandIn,
    *,
    idp_fields: dict[str, Any] | None = None,
    workload_fields: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Federation]:
    issuers = [idp_entry(idp, **(idp_fields or {})), workload_entry(workload, **(workload_fields or {}))]
    app = create_app(make_settings(auth_trusted_issuers=issuers, **settings))
    async with serve_in_process(app) as client:
        client_id, secret = await enterprise_client(client)
        yield Federation(client, idp, workload, client_id, secret)
