"""Evading per-IP rate limits with a forged `X-Forwarded-For`.

The client address is the TCP peer unless the peer is a proxy named in AUTH_FORWARDED_ALLOW_IPS;
only then does uvicorn take the client from `X-Forwarded-For`. Real processes, because that
decision is uvicorn's, below the app.
"""

from __future__ import annotations

import httpx

from ..auth_process import dev_auth_service
from ..flow import CALLBACK

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
