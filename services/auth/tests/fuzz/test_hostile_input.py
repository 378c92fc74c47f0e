"""Never a 500 from input (issue 12): hostile values on every endpoint of a real `mcp-auth serve`.

Where test_openapi_fuzz.py follows the OpenAPI description, this sends what an attacker would
(hostile_strategies.py): Unicode and IDNA-failing hosts, NUL bytes, invalid UTF-8 — escaped and raw —,
huge values and repeated parameters, on /token, /authorize, /register, /revoke, /introspect, /consent,
/callback and the well-known documents. Rules: never a 5xx; the OAuth endpoints answer a 4xx with
`{"error", "error_description"}`; every answer within seconds.

`make test` draws FUZZ_EXAMPLES (default 25) requests per endpoint; `make fuzz` draws many more.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from mcp_auth_server.db.migrate import upgrade
from mcp_testing.postgres import temporary_database

from ..auth_process import dev_auth_service
from ..conftest import RESOURCE_A
from .hostile_strategies import (
    HOSTILE_BYTES,
    HOSTILE_HOSTS_LIST,
    as_bytes,
    parameters,
    registration_bodies,
    seeded,
    urlencoded,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SLOW = 3.0
REDIRECT_URI = "http://127.0.0.1:33418/callback"
JSON_ERRORS = {"/token", "/revoke", "/introspect", "/register"}  # RFC 6749 §5.2, RFC 7591 §3.2.2
FORM = "application/x-www-form-urlencoded"

NAMES = {
    "/authorize": [
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "scope",
        "resource",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "dpop_jkt",
    ],
    "/token": [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "code_verifier",
        "redirect_uri",
        "refresh_token",
        "resource",
        "scope",
        "subject_token",
        "subject_token_type",
        "requested_token_type",
        "assertion",
    ],
    "/revoke": ["token", "token_type_hint", "client_id", "client_secret"],
    "/introspect": ["token", "token_type_hint", "client_id", "client_secret"],
    "/consent": ["request_id", "csrf_token", "decision", "scope"],
    "/callback": ["code", "state", "error", "error_description", "iss", "username"],
    "/.well-known/oauth-authorization-server": ["resource", "x"],
    "/.well-known/openid-configuration": ["x"],
    "/jwks.json": ["x"],
}
AUTHORIZATIONS = st.one_of(
    st.none(),
    HOSTILE_BYTES.map(lambda raw: "Basic " + (base64.b64encode(raw).decode() or "=")),
    st.sampled_from(["Basic", "Basic !!!", "Bearer a.b=.c", "Basic " + "A" * 10_000, "Basic Og=="]),
)


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    with temporary_database() as database:
        upgrade(database)
        with dev_auth_service(database) as service:
            yield service.issuer


@pytest.fixture(scope="module")
def known(service_url: str) -> dict[str, list[str]]:
    registration = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    public = httpx.post(f"{service_url}/register", json=registration, trust_env=False).json()
    return {
        "client_id": [public["client_id"]],
        "redirect_uri": [REDIRECT_URI],
        "response_type": ["code"],
        "grant_type": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_method": ["S256"],
        "resource": [RESOURCE_A],
        "decision": ["approve", "deny"],
        "code": ["x"],  # wrong, but well-formed: the request gets past validation to the client lookup
        "code_verifier": ["v" * 43],
        "token": ["t"],
    }


def check(path: str, response: httpx.Response) -> None:
    where = f"{response.request.method} {path} -> {response.status_code}: {response.text[:300]!r}"
    assert response.status_code < 500, where
    assert response.elapsed.total_seconds() < SLOW, where
    if path in JSON_ERRORS and 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body.get("error"), str), where
        assert isinstance(body.get("error_description"), str), where


def fuzz_settings() -> settings:
    return settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


@pytest.mark.parametrize(
    "path",
    [
        "/authorize",
        "/callback",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/jwks.json",
    ],
)
def test_hostile_query_strings_never_get_a_5xx(
    path: str, service_url: str, known: dict[str, list[str]]
) -> None:
    with httpx.Client(base_url=service_url, trust_env=False, timeout=SLOW * 3) as http:

        def ask(pairs: list[tuple[bytes, bytes]]) -> None:
            query = urlencoded(pairs, raw=False).decode("ascii")
            if len(query) >= 60_000:  # httpx refuses longer URLs (and so would a proxy in front)
                reject()  # only generated examples get here: the seeded ones are all shorter
            check(path, http.get(f"{path}?{query}" if query else path))

        for pairs in seeded(NAMES[path], known):
            ask(pairs)
        fuzz_settings()(given(parameters(NAMES[path], known))(ask))()


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect", "/consent", "/callback"])
def test_hostile_forms_never_get_a_5xx(path: str, service_url: str, known: dict[str, list[str]]) -> None:
    with httpx.Client(base_url=service_url, trust_env=False, timeout=SLOW * 3) as http:

        def ask(pairs: list[tuple[bytes, bytes]], raw: bool, authorization: str | None) -> None:
            headers = {"content-type": FORM}
            if authorization is not None:
                headers["authorization"] = authorization
            check(path, http.post(path, content=urlencoded(pairs, raw), headers=headers))

        for pairs in seeded(NAMES[path], known):
            ask(pairs, False, None)
        fuzz_settings()(given(parameters(NAMES[path], known), st.booleans(), AUTHORIZATIONS)(ask))()


def test_hostile_registrations_never_get_a_5xx(service_url: str) -> None:
    with httpx.Client(base_url=service_url, trust_env=False, timeout=SLOW * 3) as http:

        def ask(body: bytes) -> None:
            headers = {"content-type": "application/json"}
            check("/register", http.post("/register", content=body, headers=headers))

        for host in HOSTILE_HOSTS_LIST:  # every hostile host where registration takes a URI, first
            uri = f"https://{host}/x"
            for extra in ({"redirect_uris": [uri]}, {"logo_uri": uri}, {"client_uri": uri}):
                ask(as_bytes(json.dumps({"redirect_uris": [REDIRECT_URI], **extra})))
        fuzz_settings()(given(registration_bodies())(ask))()
