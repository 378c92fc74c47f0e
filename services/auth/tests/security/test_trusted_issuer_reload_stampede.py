"""Anonymous JWT-bearer requests must not stampede the database pool when the trusted-issuer list is due
for its reload (store/trusted_issuers.py reloads it every few seconds, before authentication, on a
connection of its own).

The attack: wait for the list to go stale, then send many `/token` requests at once, each a JWT-bearer
grant whose assertion is any JWT at all (no client, no signature anyone checks yet). Every one of them
found the list stale and reloaded it: as many pooled connections taken at once as requests sent, before
anything was authenticated. One reload must serve them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import event

from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.trusted_issuers import TrustedIssuerRegistry
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..federation import JWT_BEARER, Federation, federation
from ..operator_clients import runtime_of

ATTACKERS = 20


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer) as built:
        yield built


async def test_many_anonymous_jwt_bearer_requests_reload_the_trusted_issuers_once(fed: Federation) -> None:
    engine = runtime_of(fed.client).engine.sync_engine
    reloads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM trusted_issuers" in statement:
            reloads.append(statement)

    junk = jwt.encode({"iss": "https://nobody.example", "sub": "x"}, "k" * 32, algorithm="HS256")
    await asyncio.sleep(TrustedIssuerRegistry.RELOAD_SECONDS + 0.2)  # the list is now due for a reload
    event.listen(engine, "before_cursor_execute", count)
    try:
        responses = await asyncio.gather(
            *(
                fed.client.post("/token", data={"grant_type": JWT_BEARER, "assertion": junk})
                for _ in range(ATTACKERS)
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(response.status_code == 400 for response in responses), [r.text for r in responses]
    assert all(response.json()["error"] == "invalid_grant" for response in responses)
    assert len(reloads) == 1, f"{len(reloads)} reloads for {ATTACKERS} concurrent requests"
