"""The JWT-bearer grant (RFC 7523 §2.1): ID-JAGs from a trusted enterprise IdP (MCP Enterprise-Managed
Authorization) and workload tokens from a trusted workload issuer (Workload Identity Federation),
against the IdP and workload issuer stand-ins over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import select

from mcp_auth_server.db.models import AuditEvent, UpstreamIdentity, User
from mcp_auth_server.settings import AuthSettings
from mcp_testing.enterprise_idp import ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, TOKEN_EXCHANGE, EnterpriseIdpStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..conftest import ISSUER, RESOURCE_A
from ..federation import IDP_CLIENT, JWT_BEARER, Federation, federation
from ..flow import Database, all_rows, token_claims


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer) as built:
        yield built


async def id_jag_from_the_idp(fed: Federation, scope: str = "mcp:tools github:repos") -> httpx.Response:
    """The client's leg 1: exchange the user's ID token for an ID-JAG at the IdP (RFC 8693)."""
    state = fed.idp.state
    secret = state.add_client(IDP_CLIENT)
    person = state.add_person("alice-at-idp", "alice@acme.example", "Alice")
    state.allow(
        IDP_CLIENT,
        audience=ISSUER,
        resources=[RESOURCE_A],
        scopes=["mcp:tools"],
        client_id_at_audience=fed.client_id,
    )
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{fed.idp.issuer}/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "requested_token_type": ID_JAG_TOKEN_TYPE,
                "audience": ISSUER,
                "resource": RESOURCE_A,
                "scope": scope,
                "subject_token": state.id_token(person, IDP_CLIENT),
                "subject_token_type": ID_TOKEN_TYPE,
                "client_id": IDP_CLIENT,
                "client_secret": secret,
            },
        )


async def test_metadata_advertises_the_jwt_bearer_grant_and_the_id_jag_profile(fed: Federation) -> None:
    metadata = (await fed.client.get("/.well-known/oauth-authorization-server")).json()
    assert JWT_BEARER in metadata["grant_types_supported"]
    assert metadata["authorization_grant_profiles_supported"] == [
        "urn:ietf:params:oauth:grant-profile:id-jag"
    ]
    assert fed.idp.issuer not in str(metadata)  # the draft: never disclose which issuers are trusted


async def test_an_id_jag_from_the_idp_becomes_an_access_token_for_the_user(
    fed: Federation, database: Database
) -> None:
    exchanged = await id_jag_from_the_idp(fed)
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["scope"] == "mcp:tools"  # the IdP's policy narrowed what was asked
    response = await fed.present(exchanged.json()["access_token"], resource=RESOURCE_A)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body  # the draft's "Refresh Token": a fresh ID-JAG instead
    assert body["scope"] == "mcp:tools"
    assert response.headers["cache-control"] == "no-store"
    claims = await token_claims(fed.client, body["access_token"])
    assert claims["client_id"] == fed.client_id
    assert claims["email"] == "alice@acme.example"
    [user] = await all_rows(database, User, User.email == "alice@acme.example")
    assert claims["sub"] == user.id
    events = await all_rows(database, AuditEvent, AuditEvent.user_id == user.id)
    grant = next(event for event in events if event.event == "identity_assertion_grant")
    assert grant.details["idp"] == fed.idp.issuer
    assert grant.details["idp_subject"] == "alice-at-idp"
    assert {event.event for event in events} == {"identity_assertion_grant", "enterprise_user_linked"}


async def test_the_same_person_is_the_same_user_next_time(fed: Federation) -> None:
    first = await fed.present(fed.id_jag())
    second = await fed.present(fed.id_jag())
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    subjects = [(await token_claims(fed.client, r.json()["access_token"]))["sub"] for r in (first, second)]
    assert subjects[0] == subjects[1]


async def test_a_user_seen_first_is_linked_to_the_existing_user_with_that_email(
    fed: Federation, database: Database
) -> None:
    async with database() as session:
        session.add(User(id="existing-carol", login="carol", email="Carol@Acme.example", created_at=1))
        await session.commit()
    response = await fed.present(fed.id_jag(sub="carol-at-idp", email="carol@acme.example"))
    assert response.status_code == 200, response.text
    assert (await token_claims(fed.client, response.json()["access_token"]))["sub"] == "existing-carol"
    async with database() as session:
        linked = await session.scalar(
            select(UpstreamIdentity).where(UpstreamIdentity.user_id == "existing-carol")
        )
    assert linked is not None
    assert linked.subject == "carol@acme.example"


async def test_a_request_may_narrow_the_scopes_but_the_id_jag_decides_them(fed: Federation) -> None:
    both = await fed.present(fed.id_jag(scope="mcp:tools github:repos"))
    assert both.json()["scope"] == "mcp:tools github:repos", both.text
    narrowed = await fed.present(fed.id_jag(scope="mcp:tools github:repos"), scope="github:repos")
    assert narrowed.json()["scope"] == "github:repos", narrowed.text
    outside = await fed.present(fed.id_jag(scope="mcp:tools admin:everything"))
    assert outside.json()["scope"] == "mcp:tools", outside.text  # never more than the resource offers


async def test_a_service_account_token_gets_a_machine_token(fed: Federation) -> None:
    token = fed.workload.state.service_account_token("agents", "summariser", audience=ISSUER)
    response = await fed.present(
        token, auth=(), resource=RESOURCE_A
    )  # no client: the token is the credential
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "mcp:tools"
    claims = await token_claims(fed.client, body["access_token"])
    assert claims["sub"] == f"{fed.workload.issuer}#system:serviceaccount:agents:summariser"
    assert claims["client_id"] == claims["sub"]


async def test_a_github_actions_token_gets_the_identity_its_rule_names(fed: Federation) -> None:
    token = fed.workload.state.github_actions_token(
        "acme/deploy", "refs/heads/main", audience=f"{ISSUER}/token"
    )
    response = await fed.present(token, auth=(fed.client_id, fed.client_secret))  # a registered client too
    assert response.status_code == 200, response.text
    claims = await token_claims(fed.client, response.json()["access_token"])
    assert (claims["sub"], claims["client_id"]) == ("acme-deploy", fed.client_id)


async def test_key_rotation_at_the_idp_fails_no_request(fed: Federation) -> None:
    state = fed.idp.state
    assert (await fed.present(fed.id_jag())).status_code == 200
    old = state.signing_key
    state.rotate()  # the new key signs from now on; the old one is still published
    for _ in range(3):
        assert (await fed.present(fed.id_jag())).status_code == 200  # new kid: fetched at once
        assert (await fed.present(fed.id_jag(key=old))).status_code == 200  # in flight, old key
    state.retire(old.kid)


async def test_key_rotation_at_the_workload_issuer_fails_no_request(fed: Federation) -> None:
    state = fed.workload.state
    before = state.service_account_token("agents", "a", audience=ISSUER)
    assert (await fed.present(before, auth=())).status_code == 200
    state.rotate()
    after = state.service_account_token("agents", "b", audience=ISSUER)
    assert (await fed.present(after, auth=())).status_code == 200
    still = state.service_account_token("agents", "c", audience=ISSUER, key=state.keys[0])
    assert (await fed.present(still, auth=())).status_code == 200


async def test_a_static_jwks_works_without_reaching_the_issuer(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> None:
    static = {"jwks_uri": None, "jwks": workload_issuer.state.jwks()}
    async with federation(make_settings, enterprise_idp, workload_issuer, workload_fields=static) as fed:
        workload_issuer.state.fail("jwks", "5xx")
        workload_issuer.state.fail("discovery", "5xx")
        token = workload_issuer.state.service_account_token("agents", "offline", audience=ISSUER)
        assert (await fed.present(token, auth=())).status_code == 200
        assert workload_issuer.state.requests_to("/openid/v1/jwks") == []
