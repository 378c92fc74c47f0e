"""The enterprise IdP and workload issuer stand-ins answer like the real ones: the IdP's token exchange
obeys its admin's policy, keys rotate and retire, failures switch on."""

from __future__ import annotations

import httpx
import jwt

from mcp_testing.enterprise_idp import ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, TOKEN_EXCHANGE, EnterpriseIdpStandIn
from mcp_testing.workload_issuer import JWKS_PATH, WorkloadIssuerStandIn

AS = "https://auth.example.com"
MCP = "https://tools.example.com/mcp"


def exchange(idp: EnterpriseIdpStandIn, secret: str, id_token: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ID_JAG_TOKEN_TYPE,
        "audience": AS,
        "resource": MCP,
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN_TYPE,
        "client_id": "app",
        "client_secret": secret,
        **overrides,
    }
    return httpx.post(f"{idp.issuer}/token", data=form)


def test_the_idp_issues_an_id_jag_only_as_its_policy_allows(enterprise_idp: EnterpriseIdpStandIn) -> None:
    state = enterprise_idp.state
    secret = state.add_client("app")
    person = state.add_person("u1", "u1@acme.example")
    id_token = state.id_token(person, "app")
    assert exchange(enterprise_idp, secret, id_token).json()["error"] == "invalid_grant"  # no policy yet
    state.allow("app", audience=AS, resources=[MCP], scopes=["read"], client_id_at_audience="app-at-as")
    granted = exchange(enterprise_idp, secret, id_token, scope="read write")
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert (body["issued_token_type"], body["token_type"], body["scope"]) == (
        ID_JAG_TOKEN_TYPE,
        "N_A",
        "read",
    )
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "oauth-id-jag+jwt"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["aud"], claims["client_id"], claims["resource"], claims["sub"]) == (
        AS,
        "app-at-as",
        MCP,
        "u1",
    )
    assert exchange(enterprise_idp, secret, id_token, resource="https://other/mcp").status_code == 400
    assert exchange(enterprise_idp, "wrong", id_token).status_code == 401
    other_clients_token = state.id_token(person, "someone-else")
    assert exchange(enterprise_idp, secret, other_clients_token).json()["error"] == "invalid_grant"


def test_keys_rotate_and_retire(workload_issuer: WorkloadIssuerStandIn) -> None:
    state = workload_issuer.state
    first = state.signing_key
    second = state.rotate()
    published = {key["kid"] for key in httpx.get(workload_issuer.jwks_uri).json()["keys"]}
    assert published == {first.kid, second.kid}
    state.retire(first.kid)
    published = {key["kid"] for key in httpx.get(workload_issuer.jwks_uri).json()["keys"]}
    assert published == {second.kid}
    token = state.service_account_token("agents", "bot", audience=AS)
    assert jwt.get_unverified_header(token)["kid"] == second.kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:agents:bot"
    assert claims["kubernetes.io"]["namespace"] == "agents"


def test_failures_switch_on_per_route_group(workload_issuer: WorkloadIssuerStandIn) -> None:
    workload_issuer.state.fail("jwks", "5xx")
    assert httpx.get(workload_issuer.jwks_uri).status_code == 502
    discovery = httpx.get(f"{workload_issuer.issuer}/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"] == f"{workload_issuer.issuer}{JWKS_PATH}"
    workload_issuer.state.recover()
    assert httpx.get(workload_issuer.jwks_uri).status_code == 200
