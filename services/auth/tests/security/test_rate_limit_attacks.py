"""Attacks on the rate limits: evading them with a forged `X-Forwarded-For`, and aiming them at others.

The client address is the TCP peer unless the peer is a proxy named in AUTH_FORWARDED_ALLOW_IPS;
only then does uvicorn take the client from `X-Forwarded-For`. Real processes, because that
decision is uvicorn's, below the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from ..auth_process import DevAuthService, dev_auth_service
from ..conftest import RESOURCE_A
from ..flow import CALLBACK, new_request

REGISTRATION = {"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
LIMITS = {"AUTH_RATE_LIMITS": "true", "AUTH_RATE_LIMIT_REGISTER": "2/hour"}


def _register_from(issuer: str, addresses: list[str]) -> list[int]:
    with httpx.Client(base_url=issuer, trust_env=False) as http:
        return [
            http.post("/register", json=REGISTRATION, headers={"X-Forwarded-For": address}).status_code
            for address in addresses
        ]


def test_forged_forwarded_for_does_not_reset_the_per_ip_limit(migrated_database: str) -> None:
    with dev_auth_service(migrated_database, env=LIMITS) as service:
        statuses = _register_from(service.issuer, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert statuses == [201, 201, 429]


def test_a_trusted_proxy_s_forwarded_for_names_the_client(migrated_database: str) -> None:
    with dev_auth_service(
        migrated_database, env={**LIMITS, "AUTH_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    ) as service:
        statuses = _register_from(
            service.issuer, ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"]
        )
    assert statuses == [201, 201, 429, 201]


def test_a_forged_entry_before_the_proxy_s_own_does_not_reset_the_limit(migrated_database: str) -> None:
    """A proxy appends the peer it saw; what the client wrote before that is not believed (rightmost wins)."""
    with dev_auth_service(
        migrated_database, env={**LIMITS, "AUTH_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    ) as service:
        statuses = _register_from(
            service.issuer, [f"198.51.100.{n}, 203.0.113.1" for n in range(1, 4)] + ["203.0.113.2"]
        )
    assert statuses == [201, 201, 429, 201]


def test_forwarded_for_from_a_peer_outside_the_trusted_ranges_is_ignored(migrated_database: str) -> None:
    """The Kubernetes base's setting (the private ranges): a peer outside them is its own client address."""
    private_ranges = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    with dev_auth_service(
        migrated_database, env={**LIMITS, "AUTH_FORWARDED_ALLOW_IPS": private_ranges}
    ) as service:
        statuses = _register_from(service.issuer, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert statuses == [201, 201, 429]


# Aiming the limits at someone else (issue 12): before a client authenticates, a request counts against its
# source address only, so a hostile address spends its own budget, never a shared client's. Each test
# speaks from loopback addresses of its own (127.0.0.0/8 is all loopback on Linux), as distinct real peers.
AIMING_LIMITS = {
    "AUTH_RATE_LIMITS": "true",
    "AUTH_RATE_LIMIT_AUTHORIZE": "5/minute",
    "AUTH_RATE_LIMIT_TOKEN": "5/minute",
}
HAMMERING = 12  # junk requests from the attacker: more than twice the limit


@pytest.fixture(scope="module")
def aimed_at(migrated_database: str) -> Iterator[DevAuthService]:
    """One service for the module; every test uses addresses and clients no other test uses."""
    with dev_auth_service(migrated_database, env=AIMING_LIMITS) as service:
        yield service


@contextlib.contextmanager
def speaking_from(service: DevAuthService, address: str) -> Iterator[httpx.Client]:
    """A client whose connections come from `address`: what the service sees as the peer."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=service.issuer, transport=transport, trust_env=False) as http:
        yield http


def test_junk_authorize_requests_from_one_address_do_not_lock_out_a_shared_client(
    aimed_at: DevAuthService,
) -> None:
    shared = aimed_at.cli("clients", "add", "--name", "Shared", "--public", "--redirect-uri", CALLBACK)
    with speaking_from(aimed_at, "127.0.0.11") as attacker:
        junk = [
            attacker.get("/authorize", params={"client_id": shared["client_id"]}) for _ in range(HAMMERING)
        ]
    assert [r.status_code for r in junk] == [400] * 5 + [429] * (HAMMERING - 5)  # the attacker is limited
    for user in ("127.0.0.12", "127.0.0.13"):
        with speaking_from(aimed_at, user) as browser:
            request = new_request(shared["client_id"], issuer=aimed_at.issuer)
            consent = browser.get(request.url())
            assert consent.status_code == 200, consent.text  # the consent page, not 429
            assert 'name="decision" value="approve"' in consent.text


def test_wrong_secrets_from_one_address_do_not_lock_out_the_machine_client(aimed_at: DevAuthService) -> None:
    machine = aimed_at.cli(
        "clients", "add", "--name", "CI", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools"
    )
    guess = {"grant_type": "client_credentials", "resource": RESOURCE_A}
    with speaking_from(aimed_at, "127.0.0.21") as attacker:
        statuses = [
            attacker.post("/token", data=guess, auth=(machine["client_id"], f"wrong-{n}")).status_code
            for n in range(HAMMERING)
        ]
    assert statuses == [401] * 5 + [429] * (HAMMERING - 5)
    with speaking_from(aimed_at, "127.0.0.22") as pipeline:
        answer = pipeline.post("/token", data=guess, auth=(machine["client_id"], machine["client_secret"]))
    assert answer.status_code == 200, answer.text


def test_junk_codes_naming_a_public_client_do_not_lock_it_out(aimed_at: DevAuthService) -> None:
    """A public client never authenticates, so nothing at /token is ever counted against it."""
    shared = aimed_at.cli("clients", "add", "--name", "Public", "--public", "--redirect-uri", CALLBACK)
    junk = {
        "grant_type": "authorization_code",
        "client_id": shared["client_id"],
        "code": "guessed",
        "redirect_uri": CALLBACK,
        "code_verifier": "v" * 43,
    }
    with speaking_from(aimed_at, "127.0.0.31") as attacker:
        statuses = [attacker.post("/token", data=junk).status_code for _ in range(HAMMERING)]
    assert statuses == [400] * 5 + [429] * (HAMMERING - 5)
    with speaking_from(aimed_at, "127.0.0.32") as user:
        answer = user.post("/token", data=junk)
    assert answer.status_code == 400  # the user's own (here: unknown) code is judged, not refused unheard
    assert answer.json()["error"] == "invalid_grant"


# /revoke and /introspect (issue 12: "nothing anonymous can exhaust a shared resource"): each request costs a
# client lookup in the database (and may fetch a metadata document), and the client's secret can be guessed
# there as at /token. Refused attempts spend the sender's address's budget (the token rate); an address that
# has spent it is refused before any work. A resource server that authenticates spends nothing per address:
# in introspection mode it calls once per token per few seconds, far above any per-address rate.
@pytest.mark.parametrize(("path", "address"), [("/revoke", "127.0.0.41"), ("/introspect", "127.0.0.42")])
def test_wrong_secrets_at_revoke_and_introspect_from_one_address_are_rate_limited(
    aimed_at: DevAuthService, path: str, address: str
) -> None:
    server = aimed_at.cli("clients", "add", "--name", f"Tools {path}", "--resource-server", RESOURCE_A)
    with speaking_from(aimed_at, address) as attacker:
        statuses = [
            attacker.post(path, data={"token": "t"}, auth=(server["client_id"], f"wrong-{n}")).status_code
            for n in range(HAMMERING)
        ]
        junk = attacker.post(path, data={"token": "t", "client_id": "https://a..b/x"})
    # The sliding-window counter weighs the previous minute's count down as the next begins: if the
    # attempts straddle a minute boundary, one more may be let through (and judged: 401).
    assert statuses[:5] == [401] * 5
    assert statuses[5:].count(429) >= HAMMERING - 6, statuses
    assert junk.status_code == 429  # refused before any lookup or fetch
    with speaking_from(aimed_at, "127.0.0.44") as owner:  # the client itself is not locked out
        answer = owner.post(path, data={"token": "t"}, auth=(server["client_id"], server["client_secret"]))
    assert answer.status_code == 200, answer.text


def test_a_resource_server_introspecting_often_is_not_limited_by_its_address(
    aimed_at: DevAuthService,
) -> None:
    server = aimed_at.cli("clients", "add", "--name", "Busy tools", "--resource-server", RESOURCE_A)
    with speaking_from(aimed_at, "127.0.0.45") as resource_server:
        answers = [
            resource_server.post(
                "/introspect", data={"token": "t"}, auth=(server["client_id"], server["client_secret"])
            ).json()
            for _ in range(HAMMERING)
        ]
    assert answers == [{"active": False}] * HAMMERING
