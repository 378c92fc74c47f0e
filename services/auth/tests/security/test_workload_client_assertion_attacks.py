"""Workload identity as a client's own authentication: a platform token as the `client_assertion`.

The SDK's `PrivateKeyJWTOAuthProvider` fed a workload token (its documented "workload identity federation"
option) sends client_credentials with `client_assertion` = a Kubernetes service-account token whose `aud`
is our issuer. It authenticates the client registered for exactly that issuer and subject
(`clients add --machine --workload ISSUER SUBJECT`), and nothing else: another subject, an untrusted or
enterprise issuer, a retired key, another audience, or a client_id naming someone else is `invalid_client`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete

from mcp_auth_server.db.models import Client
from mcp_auth_server.settings import AuthSettings
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.oidc_state import new_signing_key
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..client_assertions import assertion_form
from ..conftest import ISSUER, RESOURCE_A
from ..federation import Federation, federation
from ..flow import assert_oauth_error
from ..operator_clients import key_client, runtime_of

NAME = f"nightly-job-{secrets.token_hex(3)}"  # the database outlives one test; the issuer stand-in too
SUBJECT = f"system:serviceaccount:agents:{NAME}"


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer) as built:
        yield built


@pytest.fixture
async def job(fed: Federation) -> AsyncIterator[str]:
    client_id = await key_client(
        fed.client,
        workload_issuer=fed.workload.issuer,
        workload_subject=SUBJECT,
        allowed_resources=[RESOURCE_A],
        allowed_scopes=["mcp:tools"],
    )
    yield client_id
    async with runtime_of(fed.client).sessions() as session:
        await session.execute(delete(Client).where(Client.client_id == client_id))
        await session.commit()


def platform_token(fed: Federation, name: str = NAME, **options: Any) -> str:
    options.setdefault("audience", ISSUER)
    return fed.workload.state.service_account_token("agents", name, **options)


async def machine_token(fed: Federation, assertion: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "resource": RESOURCE_A, **assertion_form(assertion), **extra}
    return await fed.client.post("/token", data=form)


async def test_a_registered_workload_authenticates_as_its_client(fed: Federation, job: str) -> None:
    response = await machine_token(fed, platform_token(fed))
    assert response.status_code == 200, response.text
    issued = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert issued["sub"] == job
    assert issued["client_id"] == job
    # Naming the client explicitly is fine too.
    assert (await machine_token(fed, platform_token(fed), client_id=job)).status_code == 200


async def test_another_workload_of_the_same_issuer_is_refused(fed: Federation, job: str) -> None:
    response = await machine_token(fed, platform_token(fed, name="intruder"))
    assert_oauth_error(response, "invalid_client", 401)
    assert (await machine_token(fed, platform_token(fed))).status_code == 200  # the control


async def test_a_client_id_naming_another_client_is_refused(fed: Federation, job: str) -> None:
    other = await key_client(
        fed.client,
        workload_issuer=fed.workload.issuer,
        workload_subject=f"system:serviceaccount:agents:other-{secrets.token_hex(3)}",
        allowed_resources=[RESOURCE_A],
        allowed_scopes=["mcp:tools"],
    )
    response = await machine_token(fed, platform_token(fed), client_id=other)
    assert_oauth_error(response, "invalid_client", 401)


async def test_a_workload_token_for_another_audience_is_refused(fed: Federation, job: str) -> None:
    for audience in ("https://kubernetes.default.svc", f"{ISSUER}/", "https://other-as.example"):
        response = await machine_token(fed, platform_token(fed, audience=audience))
        assert_oauth_error(response, "invalid_client", 401)


async def test_a_workload_token_signed_by_a_key_the_issuer_does_not_publish_is_refused(
    fed: Federation, job: str
) -> None:
    response = await machine_token(fed, platform_token(fed, key=new_signing_key("ES256")))
    assert_oauth_error(response, "invalid_client", 401)


async def test_an_id_jag_or_an_enterprise_token_is_not_a_workload_assertion(
    fed: Federation, job: str
) -> None:
    """The enterprise IdP is trusted for ID-JAGs (a grant), never to authenticate a client."""
    id_jag = fed.id_jag(sub=SUBJECT)
    response = await machine_token(fed, id_jag)
    assert_oauth_error(response, "invalid_client", 401)


async def test_a_workload_token_living_too_long_is_refused(fed: Federation, job: str) -> None:
    response = await machine_token(fed, platform_token(fed, lifetime=30 * 86400))
    assert_oauth_error(response, "invalid_client", 401)


async def test_a_secret_or_nothing_does_not_authenticate_a_workload_client(fed: Federation, job: str) -> None:
    form = {"grant_type": "client_credentials", "resource": RESOURCE_A}
    assert_oauth_error(await fed.client.post("/token", data=form, auth=(job, "guess")), "invalid_client", 401)
    assert_oauth_error(
        await fed.client.post("/token", data={**form, "client_id": job}), "invalid_client", 401
    )
