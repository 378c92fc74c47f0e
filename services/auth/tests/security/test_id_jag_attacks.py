"""Attacks on the identity assertion grant (ID-JAG, MCP Enterprise-Managed Authorization): each is an
assertion or a presentation that must not become an access token, answered in RFC 6749 §5.2 terms.

The trusted IdP is the stand-in over real HTTP; the attacker mints ID-JAGs with any claims it likes,
with the IdP's own keys (a compromised or confused IdP, a stolen grant) or with keys of its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
from sqlalchemy import delete, update

from mcp_auth_server.db.models import AuditEvent, Client, User
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.clients import create_client
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn, EnterpriseIdpState
from mcp_testing.oidc_state import new_signing_key
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..conftest import ISSUER, RESOURCE_A, RESOURCE_B
from ..federation import JWT_BEARER, Federation, enterprise_client, federation
from ..flow import Database, all_rows, execute, token_claims
from ..operator_clients import add_client, runtime_of


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer) as built:
        yield built


def refused(response_json: dict[str, str], error: str) -> bool:
    return response_json.get("error") == error and "access_token" not in response_json


async def test_the_control_a_genuine_id_jag_is_accepted(fed: Federation) -> None:
    assert (await fed.present(fed.id_jag())).status_code == 200


async def test_an_id_jag_for_another_audience_is_refused(fed: Federation) -> None:
    for audience in ("https://other-as.example", f"{ISSUER}/", [ISSUER, "https://other-as.example"]):
        response = await fed.present(fed.id_jag(audience=audience))
        assert response.status_code == 400, response.text
        assert refused(response.json(), "invalid_grant")


async def test_an_id_jag_for_an_unregistered_resource_is_refused(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(resource="http://127.0.0.1:9199/mcp"))
    assert refused(response.json(), "invalid_target"), response.text
    # Naming another (registered) resource than the ID-JAG's at /token does not widen it either.
    response = await fed.present(fed.id_jag(), resource=RESOURCE_B)
    assert refused(response.json(), "invalid_target"), response.text


async def test_an_id_jag_without_a_resource_is_refused(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(resource=None))
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_issued_to_another_client_is_refused(fed: Federation) -> None:
    other_id, other_secret = await enterprise_client(fed.client)
    # Issued to our client, presented by another registered one: the ID-JAG is not a client credential.
    response = await fed.present(fed.id_jag(), auth=(other_id, other_secret))
    assert refused(response.json(), "invalid_grant"), response.text
    # Issued to another client, presented by ours.
    response = await fed.present(fed.id_jag(client_id=other_id))
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_presented_without_client_authentication_is_refused(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(), auth=())
    assert refused(response.json(), "unauthorized_client"), response.text
    response = await fed.present(fed.id_jag(), auth=(fed.client_id, "not-the-secret"))
    assert response.status_code == 401
    assert refused(response.json(), "invalid_client")


async def test_a_public_client_cannot_use_an_id_jag(fed: Federation) -> None:
    async with runtime_of(fed.client).sessions() as session:
        public, _ = create_client(
            session,
            origin="preregistered",
            redirect_uris=[],
            token_endpoint_auth_method="none",
            grant_types=[JWT_BEARER],
            client_name="Public",
        )
        public_id = public.client_id
        await session.commit()
    response = await fed.client.post(
        "/token",
        data={"grant_type": JWT_BEARER, "assertion": fed.id_jag(client_id=public_id), "client_id": public_id},
    )
    assert refused(response.json(), "unauthorized_client"), response.text


async def test_a_client_not_registered_for_the_grant_cannot_use_an_id_jag(fed: Federation) -> None:
    client_id, secret = await add_client(
        fed.client,
        origin="preregistered",
        redirect_uris=["https://app.example/cb"],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token"],
        client_name="Web app",
    )
    response = await fed.present(fed.id_jag(client_id=client_id), auth=(client_id, secret))
    assert refused(response.json(), "unauthorized_client"), response.text


async def test_a_replayed_id_jag_is_refused(fed: Federation, database: Database) -> None:
    grant = fed.id_jag()
    assert (await fed.present(grant)).status_code == 200
    replay = await fed.present(grant)
    assert refused(replay.json(), "invalid_grant"), replay.text
    jti = jwt.decode(grant, options={"verify_signature": False})["jti"]
    events = await all_rows(database, AuditEvent, AuditEvent.event == "assertion_replay")
    [event] = [event for event in events if event.details["jti"] == jti]  # other tests replay too
    assert event.details["issuer"] == fed.idp.issuer


async def test_an_expired_id_jag_is_refused(fed: Federation) -> None:
    long_ago = int(time.time()) - 3600
    response = await fed.present(fed.id_jag(iat=long_ago, exp=long_ago + 300))
    assert refused(response.json(), "invalid_grant"), response.text
    assert "expired" in response.json()["error_description"]


async def test_an_id_jag_living_too_long_is_refused(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(lifetime=24 * 3600))
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_from_an_untrusted_issuer_is_refused(fed: Federation) -> None:
    stranger = EnterpriseIdpState(base_url="https://idp.attacker.example")
    response = await fed.present(
        stranger.id_jag(sub="alice-at-idp", audience=ISSUER, client_id=fed.client_id, resource=RESOURCE_A)
    )
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_naming_the_trusted_issuer_but_signed_by_another_key_is_refused(
    fed: Federation,
) -> None:
    forged = fed.id_jag(key=new_signing_key("ES256"))
    response = await fed.present(forged)
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_signed_by_a_retired_key_is_refused(fed: Federation) -> None:
    state = fed.idp.state
    assert (await fed.present(fed.id_jag())).status_code == 200  # the keys are loaded
    old = state.signing_key
    state.rotate()
    state.retire(old.kid)
    assert (await fed.present(fed.id_jag())).status_code == 200  # the new kid: the JWKS is fetched again
    response = await fed.present(fed.id_jag(key=old))
    assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_token_presented_as_an_id_jag_is_refused(fed: Federation) -> None:
    state = fed.idp.state
    person = state.add_person("alice-at-idp", "alice@acme.example")
    for token in (state.id_token(person, fed.client_id), fed.id_jag(typ="JWT"), fed.id_jag(typ=None)):
        response = await fed.present(token)
        assert refused(response.json(), "invalid_grant"), response.text


async def test_an_id_jag_presented_as_a_workload_token_is_refused(fed: Federation) -> None:
    token = fed.workload.state.sign(
        {"sub": "system:serviceaccount:agents:bot", "aud": ISSUER}, typ="oauth-id-jag+jwt"
    )
    response = await fed.present(token, auth=())
    assert refused(response.json(), "invalid_grant"), response.text


async def test_scope_escalation_beyond_the_id_jag_is_refused(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(scope="mcp:tools"), scope="mcp:tools github:repos")
    assert refused(response.json(), "invalid_scope"), response.text
    nothing = await fed.present(fed.id_jag(scope="admin:everything"))
    assert refused(nothing.json(), "invalid_scope"), nothing.text


async def test_an_id_jag_for_a_disabled_user_is_refused(fed: Federation, database: Database) -> None:
    assert (await fed.present(fed.id_jag())).status_code == 200
    await execute(database, update(User).where(User.email == "alice@acme.example").values(disabled_at=1))
    response = await fed.present(fed.id_jag())
    assert refused(response.json(), "invalid_grant"), response.text
    assert "disabled" in response.json()["error_description"]


async def test_an_hmac_or_unsigned_id_jag_is_refused(fed: Federation) -> None:
    claims = {
        "iss": fed.idp.issuer,
        "sub": "alice-at-idp",
        "aud": ISSUER,
        "client_id": fed.client_id,
        "resource": RESOURCE_A,
        "jti": "hmac-1",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
    }
    public_pem = fed.idp.state.jwks()["keys"][0]
    headers = {"typ": "oauth-id-jag+jwt", "kid": public_pem["kid"]}
    hmac = jwt.encode(claims, str(public_pem), algorithm="HS256", headers=headers)
    unsigned = jwt.encode(claims, "", algorithm="none", headers=headers)
    for token in (hmac, unsigned):
        response = await fed.present(token)
        assert refused(response.json(), "invalid_grant"), response.text


async def test_a_key_bound_id_jag_needs_a_proof_by_its_key(fed: Federation) -> None:
    response = await fed.present(fed.id_jag(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}))
    assert refused(response.json(), "invalid_grant"), response.text


@pytest.mark.parametrize("assertion", ["", "not-a-jwt", "a.b.c", "e30.e30.", "x" * 20_000])
async def test_malformed_assertions_are_refused_never_a_500(fed: Federation, assertion: str) -> None:
    response = await fed.present(assertion)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


async def test_an_unreachable_idp_is_a_503_not_a_refusal(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> None:
    async with federation(make_settings, enterprise_idp, workload_issuer) as fed:
        enterprise_idp.state.fail("discovery", "5xx")
        response = await fed.present(fed.id_jag())
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        enterprise_idp.state.recover()
        # The failed fetch backs off (10 s); a new grant after that works. Here: the next issuer is fresh.


async def test_an_id_jag_for_a_removed_client_is_refused(fed: Federation, database: Database) -> None:
    grant = fed.id_jag()
    await execute(database, delete(Client).where(Client.client_id == fed.client_id))
    response = await fed.present(grant)
    assert response.status_code == 401, response.text
    assert refused(response.json(), "invalid_client")


async def test_an_id_jag_with_an_unverified_email_does_not_take_over_the_user_with_that_email(
    fed: Federation, database: Database
) -> None:
    """OpenID Connect Core §5.1 `email_verified`: an address the IdP has not verified is anyone's claim.
    Linking the existing user who signed in (through our upstream) with that address would hand their
    account to whoever typed it at the IdP; only `email_verified: true` links."""
    async with database() as session:
        session.add(User(id="victim", login="victim", email="victim@acme.example", created_at=1))
        session.add(User(id="dave", login="dave", email="dave@acme.example", created_at=1))
        await session.commit()
    for n, unverified in enumerate((None, "false", 0)):  # None: the claim is absent
        grant = fed.id_jag(sub=f"mallory-{n}", email="victim@acme.example", email_verified=unverified)
        response = await fed.present(grant)
        if response.status_code == 200:
            claims = await token_claims(fed.client, response.json()["access_token"])
            assert claims["sub"] != "victim", unverified
        else:
            assert refused(response.json(), "invalid_grant"), response.text
    # The control: an address the IdP verified (the default here) still links.
    verified = await fed.present(fed.id_jag(sub="dave-at-idp", email="dave@acme.example"))
    assert verified.status_code == 200, verified.text
    assert (await token_claims(fed.client, verified.json()["access_token"]))["sub"] == "dave"


async def test_an_id_jag_without_scopes_cannot_be_widened_to_scopes_the_idp_never_granted(
    fed: Federation,
) -> None:
    """The IdP's ID-JAG stands for the user's consent; one that carries no `scope` granted none in
    particular. The client may then have the resource's default scopes (RFC 6749 §3.3), never pick any
    scope it likes: here `github:repos`, which would let it exchange the token for the user's GitHub
    token (the resource's upstream_token_scope)."""

    def unscoped() -> str:
        return fed.id_jag(scope=None, sub="erin-at-idp", email="erin@acme.example")

    response = await fed.present(unscoped(), scope="mcp:tools github:repos")
    assert refused(response.json(), "invalid_scope"), response.text
    response = await fed.present(unscoped(), scope="github:repos")
    assert refused(response.json(), "invalid_scope"), response.text
    # The control: the resource's defaults (mcp:tools).
    defaults = await fed.present(unscoped())
    assert defaults.status_code == 200, defaults.text
    assert defaults.json()["scope"] == "mcp:tools"


async def test_an_unverified_email_is_not_an_identity_when_the_idp_identifies_users_by_email(
    fed: Federation,
) -> None:
    """With `user_claim: email` the address *is* the person's identity here: an ID-JAG whose address the
    IdP has not verified (OpenID Connect Core §5.1, §5.7: email is not a stable identifier unless
    verified) must not speak for the user already known by that address, pinned or linked."""
    known = await fed.present(fed.id_jag(sub="grace-at-idp", email="grace@acme.example"))
    assert known.status_code == 200, known.text
    grace = (await token_claims(fed.client, known.json()["access_token"]))["sub"]
    for unverified in (None, False, "false"):
        grant = fed.id_jag(sub="mallory-at-idp", email="grace@acme.example", email_verified=unverified)
        response = await fed.present(grant)
        if response.status_code == 200:
            claims = await token_claims(fed.client, response.json()["access_token"])
            assert claims["sub"] != grace, unverified
        else:
            assert refused(response.json(), "invalid_grant"), response.text
