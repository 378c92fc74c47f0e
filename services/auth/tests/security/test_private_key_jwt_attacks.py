"""Forged, replayed and misdirected `private_key_jwt` client assertions (RFC 7523 §2.2, §3).

Each attack is refused with 401 `invalid_client` (RFC 7521 §4.2.1, RFC 6749 §5.2) and a description
that names the broken rule and nothing that helps forge; a control with a good assertion from the same
client succeeds, so every refusal is the attack's doing. At /token (client_credentials), /revoke and
/introspect alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from mcp_auth_server.db.models import Client

from ..client_assertions import ClientKey, assertion_form, unsigned
from ..conftest import ISSUER, RESOURCE_A
from ..flow import assert_oauth_error
from ..operator_clients import key_client, machine_client, runtime_of

TOKEN_URL = f"{ISSUER}/token"


async def token_request(auth_client: httpx.AsyncClient, assertion: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "resource": RESOURCE_A, **assertion_form(assertion), **extra}
    return await auth_client.post("/token", data=data)


def assert_invalid_client(response: httpx.Response, mentions: str = "") -> None:
    body = assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")
    assert mentions in body["error_description"], body


@pytest.fixture
async def machine(auth_client: httpx.AsyncClient) -> tuple[str, ClientKey]:
    key = ClientKey()
    client_id = await key_client(
        auth_client, jwks=key.jwks, allowed_resources=[RESOURCE_A], allowed_scopes=["mcp:tools"]
    )
    return client_id, key


async def assert_control_succeeds(auth_client: httpx.AsyncClient, client_id: str, key: ClientKey) -> None:
    response = await token_request(auth_client, key.assertion(client_id, ISSUER))
    assert response.status_code == 200, response.text


async def test_good_assertions_with_the_issuer_or_the_token_endpoint_as_audience_are_accepted(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    for audience in (ISSUER, TOKEN_URL, [ISSUER]):
        response = await token_request(auth_client, key.assertion(client_id, audience))
        assert response.status_code == 200, (audience, response.text)
        assert response.json()["token_type"] == "Bearer"
    # No kid: the client's only key is the one (the SDK's SignedJWTParameters sends none).
    assert (await token_request(auth_client, key.assertion(client_id, ISSUER, kid=None))).status_code == 200


async def test_reused_jti_is_refused(auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]) -> None:
    client_id, key = machine
    assertion = key.assertion(client_id, ISSUER)
    assert (await token_request(auth_client, assertion)).status_code == 200
    assert_invalid_client(await token_request(auth_client, assertion), "used before")
    # A new assertion carrying the spent jti is refused too: the jti, not the token string, is spent.
    again = key.assertion(client_id, ISSUER, jti=key_jti(assertion))
    assert_invalid_client(await token_request(auth_client, again), "used before")
    # ... also at another endpoint.
    response = await auth_client.post("/revoke", data={"token": "x", **assertion_form(again)})
    assert_invalid_client(response, "used before")


def key_jti(assertion: str) -> str:
    jti: str = jwt.decode(assertion, options={"verify_signature": False})["jti"]
    return jti


@pytest.mark.parametrize(
    "audience",
    [
        "https://attacker.example",
        f"{ISSUER}/",
        f"{ISSUER}/revoke",
        "http://127.0.0.1:9101/mcp",
        [ISSUER, "https://attacker.example"],
        [],
    ],
)
async def test_wrong_audience_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey], audience: Any
) -> None:
    client_id, key = machine
    assert_invalid_client(await token_request(auth_client, key.assertion(client_id, audience)), "aud")
    await assert_control_succeeds(auth_client, client_id, key)


async def test_hmac_signed_with_the_public_key_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    """The classic key-confusion forgery: HS256 keyed with the client's public key, which anyone can read."""
    client_id, key = machine
    for secret in (key.public_pem, key.public_pem.strip()):
        header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
        forged = unsigned(header, key.claims(client_id, ISSUER))
        signing_input = forged.rsplit(".", 1)[0].encode()
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        forged = f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        assert_invalid_client(await token_request(auth_client, forged), "signed with one of")
    await assert_control_succeeds(auth_client, client_id, key)


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE"])
async def test_alg_none_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey], algorithm: str
) -> None:
    client_id, key = machine
    forged = unsigned({"alg": algorithm, "kid": key.kid}, key.claims(client_id, ISSUER))
    assert_invalid_client(await token_request(auth_client, forged), "signed with one of")
    await assert_control_succeeds(auth_client, client_id, key)


async def test_key_not_in_the_clients_jwks_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    stranger = ClientKey()
    for kid in (stranger.kid, key.kid, None):  # its own kid, the client's kid, no kid at all
        forged = stranger.assertion(client_id, ISSUER, kid=kid)
        assert_invalid_client(await token_request(auth_client, forged))
    await assert_control_succeeds(auth_client, client_id, key)


async def test_key_of_another_client_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, _ = machine
    other_key = ClientKey()
    await key_client(
        auth_client, jwks=other_key.jwks, allowed_resources=[RESOURCE_A], allowed_scopes=["mcp:tools"]
    )
    forged = other_key.assertion(client_id, ISSUER)
    assert_invalid_client(
        await token_request(auth_client, forged), "not signed by a key the client registered"
    )


async def test_iss_different_from_sub_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    for claims in ({"iss": "someone-else"}, {"iss": None}):
        assertion = key.assertion(client_id, ISSUER, **claims)
        assert_invalid_client(await token_request(auth_client, assertion))
    await assert_control_succeeds(auth_client, client_id, key)


async def test_sub_naming_another_client_cannot_borrow_its_identity(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    """The assertion names the victim as sub (so the victim's keys are used): the attacker's key fails."""
    victim_id, _ = machine
    attacker_key = ClientKey()
    attacker_id = await key_client(
        auth_client, jwks=attacker_key.jwks, allowed_resources=[RESOURCE_A], allowed_scopes=["mcp:tools"]
    )
    forged = attacker_key.assertion(attacker_id, ISSUER, sub=victim_id)
    assert_invalid_client(await token_request(auth_client, forged))
    # client_id naming one client and the assertion another is a malformed request.
    response = await token_request(
        auth_client, attacker_key.assertion(attacker_id, ISSUER), client_id=victim_id
    )
    assert_oauth_error(response, "invalid_request")


async def test_expired_assertion_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    claims = key.claims(client_id, ISSUER)
    expired = key.assertion(client_id, ISSUER, iat=claims["iat"] - 600, exp=claims["iat"] - 300)
    assert_invalid_client(await token_request(auth_client, expired), "expired")
    await assert_control_succeeds(auth_client, client_id, key)


async def test_too_long_a_lifetime_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    for overrides in ({"lifetime": 3600}, {"lifetime": 3600, "iat": None}, {"iat": 10**10}):
        assertion = key.assertion(client_id, ISSUER, **overrides)
        assert_invalid_client(await token_request(auth_client, assertion))
    await assert_control_succeeds(auth_client, client_id, key)


@pytest.mark.parametrize("missing", ["exp", "jti", "aud", "sub"])
async def test_assertion_missing_a_required_claim_is_refused(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey], missing: str
) -> None:
    client_id, key = machine
    assertion = key.assertion(client_id, ISSUER, **{missing: None})
    response = await token_request(auth_client, assertion, client_id=client_id)
    assert_invalid_client(response)


async def test_private_key_jwt_client_cannot_use_a_secret(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    form = {"grant_type": "client_credentials", "resource": RESOURCE_A}
    for request in (
        {"auth": (client_id, "made-up")},
        {"auth": (client_id, "")},
        {"data": {**form, "client_id": client_id, "client_secret": "made-up"}},
        {"data": {**form, "client_id": client_id}},  # no authentication at all
    ):
        response = await auth_client.post("/token", **{"data": form, **request})  # type: ignore[arg-type]
        assert_invalid_client(response)
    await assert_control_succeeds(auth_client, client_id, key)


async def test_secret_client_cannot_use_an_assertion(auth_client: httpx.AsyncClient) -> None:
    client_id, secret = await machine_client(auth_client, [RESOURCE_A], ["mcp:tools"])
    key = ClientKey()
    response = await token_request(auth_client, key.assertion(client_id, ISSUER))
    assert_invalid_client(response, "client_secret_basic")
    # Both at once is no authentication method at all.
    response = await auth_client.post(
        "/token",
        auth=(client_id, secret),
        data={
            "grant_type": "client_credentials",
            "resource": RESOURCE_A,
            **assertion_form(key.assertion(client_id, ISSUER)),
        },
    )
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize(
    "form",
    [
        {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            "client_assertion": "x",
        },
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
        {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "x.y.z",
        },
        {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "a" * 20_000,
        },
        {"client_assertion": "eyJhbGciOiJFUzI1NiJ9.e30.AA"},
    ],
)
async def test_malformed_client_assertions_are_4xx_errors_never_a_500(
    auth_client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await auth_client.post("/token", data={"grant_type": "client_credentials", **form})
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_client", "invalid_request")


async def test_revoke_and_introspect_accept_assertions_and_refuse_bad_ones(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    client_id, key = machine
    rs_key = ClientKey()
    rs_id = await key_client(
        auth_client, origin="resource_server", jwks=rs_key.jwks, served_resource=RESOURCE_A
    )
    issued = await token_request(auth_client, key.assertion(client_id, ISSUER))
    access_token = issued.json()["access_token"]

    async def introspect(assertion: str) -> httpx.Response:
        return await auth_client.post(
            "/introspect", data={"token": access_token, **assertion_form(assertion)}
        )

    answer = await introspect(rs_key.assertion(rs_id, ISSUER))
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True
    for forged in (
        ClientKey().assertion(rs_id, ISSUER),  # a key the resource server never registered
        rs_key.assertion(rs_id, "https://attacker.example"),
        unsigned({"alg": "none"}, rs_key.claims(rs_id, ISSUER)),
    ):
        assert_invalid_client(await introspect(forged))
    # The client revokes its own token with an assertion; introspection then says inactive.
    revoked = await auth_client.post(
        "/revoke", data={"token": access_token, **assertion_form(key.assertion(client_id, ISSUER))}
    )
    assert revoked.status_code == 200, revoked.text
    assert (await introspect(rs_key.assertion(rs_id, ISSUER))).json() == {"active": False}
    forged_revoke = await auth_client.post(
        "/revoke", data={"token": access_token, **assertion_form(ClientKey().assertion(client_id, ISSUER))}
    )
    assert_invalid_client(forged_revoke)


async def test_a_key_the_operator_replaced_is_refused_at_once(
    auth_client: httpx.AsyncClient, machine: tuple[str, ClientKey]
) -> None:
    """Registrations are remembered a few seconds for the check before the transaction; the transaction
    compares them with the client's row, so a replaced key stops working with the very next request."""
    client_id, old = machine
    await assert_control_succeeds(auth_client, client_id, old)  # the old registration is now remembered
    new = ClientKey()
    async with runtime_of(auth_client).sessions() as session:
        await session.execute(update(Client).where(Client.client_id == client_id).values(jwks=new.jwks))
        await session.commit()
    assert_invalid_client(await token_request(auth_client, old.assertion(client_id, ISSUER)), "keys changed")
    await assert_control_succeeds(auth_client, client_id, new)
    assert_invalid_client(await token_request(auth_client, old.assertion(client_id, ISSUER)))
