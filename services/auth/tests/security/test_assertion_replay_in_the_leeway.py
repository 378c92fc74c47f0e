"""An assertion is accepted until `exp` plus the clock-skew leeway (RFC 7523 §3 item 4), so its `jti` must
be remembered that long too (item 7). It was remembered only until `exp`: with Redis (`SET NX EXAT`, an
expiry in the past kept for one second) an ID-JAG or workload token that had just expired could be
replayed about once a second for the whole leeway, each time for a new access token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from mcp_auth_server.settings import AuthSettings
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn
from mcp_testing.workload_issuer import WorkloadIssuerStandIn

from ..conftest import ISSUER
from ..federation import Federation, federation

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def fed(
    make_settings: Callable[..., AuthSettings],
    enterprise_idp: EnterpriseIdpStandIn,
    workload_issuer: WorkloadIssuerStandIn,
) -> AsyncIterator[Federation]:
    async with federation(make_settings, enterprise_idp, workload_issuer, auth_redis_url=REDIS_URL) as built:
        yield built


async def test_an_id_jag_just_past_its_exp_cannot_be_replayed_within_the_leeway(fed: Federation) -> None:
    moment = int(time.time())
    grant = fed.id_jag(sub="henry-at-idp", email="henry@acme.example", iat=moment - 90, exp=moment - 20)
    first = await fed.present(grant)
    assert first.status_code == 200, first.text  # within the leeway: accepted once
    await asyncio.sleep(2.5)  # past the second Redis keeps an expired key
    replayed = await fed.present(grant)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_grant", replayed.text


async def test_a_workload_token_just_past_its_exp_cannot_be_replayed_within_the_leeway(
    fed: Federation,
) -> None:
    moment = int(time.time())
    token = fed.workload.state.service_account_token(
        "agents", "replayer", ISSUER, iat=moment - 90, exp=moment - 20
    )
    first = await fed.present(token, auth=())
    assert first.status_code == 200, first.text
    await asyncio.sleep(2.5)  # past the second Redis keeps an expired key
    replayed = await fed.present(token, auth=())
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_grant", replayed.text
