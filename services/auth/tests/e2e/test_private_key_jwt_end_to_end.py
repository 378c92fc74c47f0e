"""Issue 16 end to end: `private_key_jwt` with the mcp SDK's own client, and MCP servers that hold keys.

Processes on 127.0.0.1: `mcp-auth serve` on Postgres (GitHub upstream: the stand-in) and two `mcp-tools
serve`, each authenticating as its own client with a private key (MCP_CLIENT_PRIVATE_KEY_FILE, no secret
anywhere) and introspecting every token (MCP_INTROSPECTION=on), so every tool call below also proves the
kit's key-based introspection. A CI job registered with `mcp-auth clients add --machine --jwks @file`
gets a machine token with the SDK's `PrivateKeyJWTOAuthProvider` (client_credentials, RFC 7523 §2.2) and
calls tools; a Kubernetes workload registered with `--workload ISSUER SUBJECT` does the same with its
service-account token as the assertion (the SDK's workload-identity option); a person's `get_github_repos`
call proves the kit's key-based token exchange.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import PrivateKeyJWTOAuthProvider, SignedJWTParameters
from mcp.client.streamable_http import streamable_http_client

from mcp_auth_kit import DPoPKey, PrivateKeyJWT
from mcp_testing.github_standin import GitHubStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from .sdk_client import MemoryStorage, Person, oauth_mcp_client
from .stack import Stack, mcp_auth, running_stack


@pytest.fixture(scope="module")
def stack(
    migrated_database: str,
    github_server: GitHubStandIn,
    workload_issuer_server: WorkloadIssuerStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    state = github_server.reset()
    state.add_user("octocat", name="The Octocat", repos=["hello-world", "spoon"])
    state.auto_login = "octocat"
    introspecting = {"MCP_INTROSPECTION": "on"}
    # A Kubernetes cluster's service-account issuer, trusted for workloads. Its `subjects` rules are for
    # the JWT-bearer grant; a client registered for a workload is what its token authenticates as.
    workload_issuer_server.reset()
    workload = workload_issuer_server
    trusted = [
        {
            "issuer": workload.issuer,
            "kind": "workload",
            "jwks_uri": workload.jwks_uri,
            "subjects": {
                "system:serviceaccount:batch:*": {"resource": "https://unused.example/mcp", "scopes": ["x"]}
            },
        }
    ]
    yield from running_stack(
        migrated_database,
        github_server,
        mcp_extra=[introspecting, introspecting],
        mcp_keys=tmp_path_factory.mktemp("mcp-keys"),
        AUTH_TRUSTED_ISSUERS=json.dumps(trusted),
    )


def machine_client(stack: Stack, tmp_path: Path, resource: str) -> tuple[dict[str, Any], bytes]:
    """`mcp-auth clients add --machine --jwks @jwks.json`, as an operator runs it; the job keeps the PEM."""
    key = DPoPKey.generate("ES256")
    pem = key.private_key_pem()
    (tmp_path / "jwks.json").write_text(json.dumps(PrivateKeyJWT.from_pem(pem).public_jwks()))
    added: dict[str, Any] = json.loads(
        mcp_auth(
            stack.auth_env,
            *(
                "clients",
                "add",
                "--name",
                "CI job",
                "--machine",
                "--resource",
                resource,
                "--scope",
                "mcp:tools",
            ),
            *("--jwks", f"@{tmp_path / 'jwks.json'}", "--json"),
        )
    )
    assert added["client_secret"] is None
    return added, pem


def _text(result: object) -> str:
    return str(getattr(result, "structured_content", None) or getattr(result, "content", ""))


async def test_sdk_private_key_jwt_client_gets_a_machine_token_and_calls_tools(
    stack: Stack, tmp_path: Path
) -> None:
    resource = next(iter(stack.mcp))
    client, pem = machine_client(stack, tmp_path, resource)
    client_id = client["client_id"]
    signing = SignedJWTParameters(
        issuer=client_id, subject=client_id, signing_key=pem.decode(), signing_algorithm="ES256"
    )
    storage = MemoryStorage()
    provider = PrivateKeyJWTOAuthProvider(
        server_url=resource,
        storage=storage,
        client_id=client_id,
        assertion_provider=signing.create_assertion_provider(),
        scope="mcp:tools",
        issuer=stack.issuer,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(resource, http_client=http)) as mcp,
    ):
        who = await mcp.call_tool("get_user_info", {})
        assert not who.is_error, who
        assert client_id in _text(who)
        sum_ = await mcp.call_tool("calculate", {"expression": "6 * 7"})
        assert not sum_.is_error, sum_
        assert "42" in _text(sum_)
    assert storage.tokens is not None
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["sub"] == client_id
    assert claims["aud"] == resource
    assert storage.tokens.refresh_token is None


async def test_sdk_client_authenticates_with_its_kubernetes_service_account_token(
    stack: Stack, workload_issuer_server: WorkloadIssuerStandIn
) -> None:
    """The SDK's documented workload-identity option: `PrivateKeyJWTOAuthProvider` whose assertion provider
    returns the platform's token for the audience it is given (our issuer). No key, no secret."""
    resource = next(iter(stack.mcp))
    workload = workload_issuer_server
    subject = "system:serviceaccount:agents:report-writer"
    added = json.loads(
        mcp_auth(
            stack.auth_env,
            *("clients", "add", "--name", "report writer", "--machine", "--resource", resource),
            *("--scope", "mcp:tools", "--workload", workload.issuer, subject, "--json"),
        )
    )
    assert added["client_secret"] is None
    audiences: list[str] = []

    async def projected_token(audience: str) -> str:
        audiences.append(audience)
        return workload.state.service_account_token("agents", "report-writer", audience=audience)

    provider = PrivateKeyJWTOAuthProvider(
        server_url=resource,
        storage=MemoryStorage(),
        client_id=added["client_id"],
        assertion_provider=projected_token,
        scope="mcp:tools",
        issuer=stack.issuer,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(resource, http_client=http)) as mcp,
    ):
        who = await mcp.call_tool("get_user_info", {})
        assert not who.is_error, who
        assert added["client_id"] in _text(who)
    assert audiences == [stack.issuer]


async def test_the_same_assertion_twice_and_a_secret_are_refused_by_the_real_service(
    stack: Stack, tmp_path: Path
) -> None:
    resource = next(iter(stack.mcp))
    client, pem = machine_client(stack, tmp_path, resource)
    client_id = client["client_id"]
    assertion = PrivateKeyJWT.from_pem(pem).assertion(client_id, stack.issuer)
    form = {
        "grant_type": "client_credentials",
        "resource": resource,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    async with httpx.AsyncClient(base_url=stack.issuer, trust_env=False) as http:
        first = await http.post("/token", data=form)
        assert first.status_code == 200, first.text
        replayed = await http.post("/token", data=form)
        assert replayed.status_code == 401
        assert replayed.json()["error"] == "invalid_client"
        secret = await http.post(
            "/token",
            data={"grant_type": "client_credentials", "resource": resource},
            auth=(client_id, "guess"),
        )
        assert secret.status_code == 401


async def test_a_person_reaches_github_through_a_server_that_exchanges_tokens_with_its_key(
    stack: Stack,
) -> None:
    resource = next(iter(stack.mcp))
    async with httpx.AsyncClient() as browser_http:
        person = Person(browser_http)
        async with oauth_mcp_client(resource, person, MemoryStorage()) as client:
            # The SDK steps up to github:repos by itself; the server then exchanges with its key.
            repos = await client.call_tool("get_github_repos", {"sort": "full_name"})
            assert not repos.is_error, repos
            assert "hello-world" in _text(repos)
