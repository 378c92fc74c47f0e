"""Schemathesis against a real `mcp-auth serve`: no input makes an endpoint fail, stall or go off protocol.

Every public endpoint (metadata, JWKS, /register, /authorize, /token, /revoke, /introspect) is fed
generated requests from its OpenAPI description (openapi_description.py), with real client ids and
secrets mixed in so the grants are reached too. Rules: never a 5xx; every 4xx from an OAuth endpoint
is JSON `{"error", "error_description"}` (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009 §2.2.1; the
authorization endpoint may answer with an HTML page, RFC 9700 §4.11.2); every answer within seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from mcp_auth_server.app import create_app
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.settings import load_settings
from mcp_testing.postgres import temporary_database
from mcp_testing.processes import ServiceProcess

from ..auth_process import dev_auth_service
from ..conftest import RESOURCE_A
from ..e2e.stack import mcp_auth
from .openapi_description import KnownValues, basic, describe, operations_described

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))  # per operation; `make fuzz` raises it
SLOW = 3.0  # seconds; no answer may take longer
PAGE_ENDPOINTS = {"/authorize"}  # answer people: an HTML error page is right there
REDIRECT_URI = "http://127.0.0.1:33418/callback"


@pytest.fixture(scope="module")
def auth_service(fuzz_database: str) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    with dev_auth_service(fuzz_database) as service:
        yield service.process, service.env


@pytest.fixture(scope="module")
def fuzz_database() -> Iterator[str]:
    """A database of its own: fuzzing registers hundreds of clients other tests need not see."""
    with temporary_database() as url:
        upgrade(url)
        yield url


def known_values(service: ServiceProcess, env: dict[str, str]) -> KnownValues:
    with httpx.Client(base_url=service.url, trust_env=False) as http:
        metadata = {"redirect_uris": [REDIRECT_URI], "client_name": "fuzz"}
        public = http.post("/register", json={**metadata, "token_endpoint_auth_method": "none"}).json()
        confidential = http.post("/register", json=metadata).json()
    add = ["clients", "add", "--name", "fuzz", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools"]
    machine = json.loads(mcp_auth(env, *add, "--json"))
    return KnownValues(
        client_ids=[public["client_id"], confidential["client_id"], machine["client_id"]],
        client_secret=confidential["client_secret"],
        machine_basic=basic(machine["client_id"], machine["client_secret"]),
        resource=RESOURCE_A,
        redirect_uri=REDIRECT_URI,
    )


@pytest.fixture(scope="module")
def auth_api(auth_service: tuple[ServiceProcess, dict[str, str]]) -> Any:
    service, env = auth_service
    published = create_app(load_settings(**{k.lower(): v for k, v in env.items()})).openapi()
    return schemathesis.openapi.from_dict(describe(published, known_values(service, env)))


# Schemathesis' own pytest integration (lazy schemas) does not run under pytest 9, so each
# operation's strategy is drawn from with a plain hypothesis test: valid and invalid inputs alike.
@pytest.mark.parametrize(("method", "path"), sorted(operations_described()))
def test_no_generated_request_gets_a_5xx_an_off_protocol_error_or_a_slow_answer(
    method: str, path: str, auth_api: Any, auth_service: tuple[ServiceProcess, dict[str, str]]
) -> None:
    service, _ = auth_service
    operation = auth_api[path][method.upper()]
    cases = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(cases)
    def answers_within_the_protocol(case: Any) -> None:
        response = case.call(base_url=service.url, timeout=SLOW * 3, allow_redirects=False)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        assert response.status_code < 500, where
        assert response.elapsed < SLOW, where
        if 400 <= response.status_code < 500 and path not in PAGE_ENDPOINTS:
            assert response.headers.get("content-type", [""])[0].startswith("application/json"), where
            body = response.json()
            assert isinstance(body.get("error"), str), where
            assert isinstance(body.get("error_description"), str), where

    answers_within_the_protocol()
