"""Issue 16's end-to-end: identity without per-app secrets, every piece a real process or server.

- Enterprise-Managed Authorization: the `mcp` SDK's `IdentityAssertionOAuthProvider` asks the enterprise
  IdP stand-in for an ID-JAG (RFC 8693 token exchange, under the admin's policy), presents it at
  `mcp-auth serve`'s /token, and calls tools on `mcp-tools serve`. No consent page, no browser.
- Workload identity: a Kubernetes-style service-account token from the workload issuer stand-in becomes a
  machine token at /token, and that token calls a tool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from mcp_testing.enterprise_idp import (
    ID_JAG_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    EnterpriseIdpStandIn,
)
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from .sdk_client import MemoryStorage
from .stack import Stack, mcp_auth, running_stack

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP_CLIENT = "ai-assistant-at-acme-idp"


@pytest.fixture(scope="module")
def stack(
    migrated_database: str,
    github_server: GitHubStandIn,
    enterprise_idp_server: EnterpriseIdpStandIn,
    workload_issuer_server: WorkloadIssuerStandIn,
) -> Iterator[Stack]:
    enterprise_idp_server.reset()
    workload_issuer_server.reset()
    # The workload issuer is added with the CLI by its test (its rule names the stack's resource URL).
    issuers = [
        {
            "issuer": enterprise_idp_server.issuer,
            "kind": "enterprise-idp",
            "user_claim": "email",
            "name": "Acme",
        },
    ]
    yield from running_stack(
        migrated_database, github_server, mcp_count=1, AUTH_TRUSTED_ISSUERS=json.dumps(issuers)
    )


def _text(result: object) -> str:
    return str(getattr(result, "structured_content", None) or getattr(result, "content", ""))


async def test_an_enterprise_user_reaches_tools_through_the_sdk_with_an_id_jag(
    stack: Stack, enterprise_idp_server: EnterpriseIdpStandIn
) -> None:
    resource = next(iter(stack.mcp))
    ours = json.loads(
        mcp_auth(stack.auth_env, "clients", "add", "--name", "AI assistant", "--jwt-bearer", "--json")
    )
    idp = enterprise_idp_server.state
    idp_secret = idp.add_client(IDP_CLIENT)
    person = idp.add_person("00u1a2b3c4", "dana@acme.example", "Dana")
    # The admin's decision, in the IdP: this client may reach this server with mcp:tools, for everyone.
    idp.allow(
        IDP_CLIENT,
        audience=stack.issuer,
        resources=[resource],
        scopes=["mcp:tools"],
        client_id_at_audience=ours["client_id"],
    )
    id_token = idp.id_token(person, IDP_CLIENT)  # what the client holds after Dana signed in with SSO
    exchanges: list[tuple[str, str]] = []

    async def id_jag(audience: str, resource_url: str) -> str:
        """Leg 1, deployment-specific (the SDK leaves it to us): token exchange at the IdP."""
        exchanges.append((audience, resource_url))
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{enterprise_idp_server.issuer}/token",
                auth=(IDP_CLIENT, idp_secret),
                data={
                    "grant_type": TOKEN_EXCHANGE,
                    "requested_token_type": ID_JAG_TOKEN_TYPE,
                    "audience": audience,
                    "resource": resource_url,
                    "scope": "mcp:tools",
                    "subject_token": id_token,
                    "subject_token_type": ID_TOKEN_TYPE,
                },
            )
        assert response.status_code == 200, response.text
        grant: str = response.json()["access_token"]
        return grant

    storage = MemoryStorage()
    provider = IdentityAssertionOAuthProvider(
        server_url=resource,
        storage=storage,
        client_id=ours["client_id"],
        client_secret=ours["client_secret"],
        issuer=stack.issuer,
        assertion_provider=id_jag,
        scope="mcp:tools",
        token_endpoint_auth_method="client_secret_basic",
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        who = await client.call_tool("get_user_info", {})
        assert not who.is_error, who
        assert "dana@acme.example" in _text(who)
        assert ours["client_id"] in _text(who)
        total = await client.call_tool("calculate", {"expression": "6 * 7"})
        assert not total.is_error, total
        assert "42" in _text(total)

    assert exchanges == [(stack.issuer, resource)]  # one ID-JAG, for exactly this server
    assert storage.tokens is not None
    assert storage.tokens.refresh_token is None  # the ID-JAG draft: a fresh ID-JAG, not a refresh token
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert (claims["aud"], claims["iss"], claims["scope"]) == (resource, stack.issuer, "mcp:tools")


async def test_a_kubernetes_workload_calls_a_tool_with_its_service_account_token(
    stack: Stack, workload_issuer_server: WorkloadIssuerStandIn
) -> None:
    resource = next(iter(stack.mcp))
    workload = workload_issuer_server
    mcp_auth(
        stack.auth_env,
        *("issuers", "add", workload.issuer, "--kind", "workload", "--jwks-uri", workload.jwks_uri),
        *("--subject", "system:serviceaccount:agents:*", "--resource", resource, "--scope", "mcp:tools"),
        *("--audience", stack.issuer),
    )
    projected = workload.state.service_account_token("agents", "nightly-report", audience=stack.issuer)
    async with httpx.AsyncClient(timeout=30) as http:
        # Every replica picks the CLI's issuer up within seconds: retry until this one has.
        for _ in range(40):
            response = await http.post(
                f"{stack.issuer}/token",
                data={"grant_type": JWT_BEARER, "assertion": projected, "resource": resource},
            )
            if response.json().get("error_description") != "the assertion's issuer is not trusted here":
                break
            await asyncio.sleep(0.25)
            projected = workload.state.service_account_token(
                "agents", "nightly-report", audience=stack.issuer
            )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert "refresh_token" not in response.json()
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http2,
        Client(streamable_http_client(resource, http_client=http2)) as client,
    ):
        who = await client.call_tool("get_user_info", {})
        assert not who.is_error, who
        assert "system:serviceaccount:agents:nightly-report" in _text(who)
        assert not (await client.call_tool("calculate", {"expression": "2 + 2"})).is_error
