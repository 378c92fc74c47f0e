"""Attacks with workload tokens (MCP Workload Identity Federation): each must not become an access token.

The trusted workload issuer is the stand-in (a Kubernetes cluster's service-account issuer, or GitHub
Actions); its rules allow `system:serviceaccount:agents:*` and `repo:acme/deploy:ref:refs/heads/main`
to reach RESOURCE_A with `mcp:tools`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from mcp_auth_server.settings import AuthSettings
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.oidc_state import new_signing_key
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..conftest import ISSUER, RESOURCE_A, RESOURCE_B
from ..federation import Federation, federation


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer) as built:
        yield built


def service_account(fed: Federation, namespace: str = "agents", **options: object) -> str:
    return fed.workload.state.service_account_token(namespace, "bot", audience=ISSUER, **options)  # type: ignore[arg-type]


async def test_the_control_a_workload_inside_the_rules_gets_a_token(fed: Federation) -> None:
    assert (await fed.present(service_account(fed), auth=())).status_code == 200


async def test_a_workload_token_with_a_subject_outside_the_rules_is_refused(fed: Federation) -> None:
    for token in (
        service_account(fed, namespace="default"),
        service_account(fed, namespace="agents-evil"),  # a glob `agents:*` is not a prefix match
        fed.workload.state.github_actions_token("acme/deploy", "refs/heads/feature", audience=ISSUER),
        fed.workload.state.github_actions_token("evil/deploy", "refs/heads/main", audience=ISSUER),
    ):
        response = await fed.present(token, auth=())
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"


async def test_a_workload_token_for_another_audience_is_refused(fed: Federation) -> None:
    for audience in ("https://kubernetes.default.svc", "https://other-as.example/token", f"{ISSUER}/"):
        token = fed.workload.state.service_account_token("agents", "bot", audience=audience)
        response = await fed.present(token, auth=())
        assert response.json()["error"] == "invalid_grant", response.text


async def test_a_workload_token_living_too_long_is_refused(fed: Federation) -> None:
    response = await fed.present(service_account(fed, lifetime=2 * 86_400), auth=())
    assert response.json()["error"] == "invalid_grant", response.text
    assert "longer" in response.json()["error_description"]


async def test_a_replayed_workload_token_is_refused(fed: Federation) -> None:
    token = service_account(fed)
    assert (await fed.present(token, auth=())).status_code == 200
    assert (await fed.present(token, auth=())).json()["error"] == "invalid_grant"


async def test_a_workload_token_cannot_reach_beyond_its_rule(fed: Federation) -> None:
    other = await fed.present(service_account(fed), auth=(), resource=RESOURCE_B)
    assert other.json()["error"] == "invalid_target", other.text
    more = await fed.present(service_account(fed), auth=(), scope="mcp:tools github:repos")
    assert more.json()["error"] == "invalid_scope", more.text
    assert (await fed.present(service_account(fed), auth=(), resource=RESOURCE_A)).status_code == 200


async def test_a_workload_token_signed_by_another_key_is_refused(fed: Federation) -> None:
    forged = service_account(fed, key=new_signing_key("ES256"))
    assert (await fed.present(forged, auth=())).json()["error"] == "invalid_grant"


async def test_an_id_jag_cannot_pass_as_a_workload_token_nor_the_reverse(fed: Federation) -> None:
    # The IdP's ID-JAG presented without a client: an ID-JAG needs its client, whatever it claims.
    response = await fed.present(fed.id_jag(), auth=())
    assert response.json()["error"] == "unauthorized_client", response.text
    # A token of the enterprise IdP shaped like a workload token: its issuer is not a workload issuer.
    shaped = fed.idp.state.sign({"sub": "system:serviceaccount:agents:bot", "aud": ISSUER}, typ="JWT")
    response = await fed.present(shaped, auth=())
    assert response.json()["error"] == "invalid_grant", response.text
