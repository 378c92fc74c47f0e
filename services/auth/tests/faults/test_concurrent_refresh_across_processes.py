"""50 concurrent refreshes of one token against a real `mcp-auth serve` with two worker processes.

security/test_refresh_token_attacks.py races refreshes in process and security/test_code_attacks.py
races code redemptions across processes; this races refreshes across processes on Postgres, where
only the grant row's lock (SELECT ... FOR UPDATE, store/grants.py) keeps the family from forking:
one rotation, at most one grace-window retry, the rest reuse (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from mcp_auth_server.db.models import Grant, RefreshToken
from mcp_testing.processes import ServiceProcess

from ..auth_process import dev_auth_service
from ..flow import Database, all_rows, refresh, tokens_for

RACERS = 50


@pytest.fixture(scope="module")
def two_workers(migrated_database: str) -> Iterator[ServiceProcess]:
    with dev_auth_service(migrated_database, workers=2) as service:
        yield service.process


async def test_concurrent_refreshes_across_processes_rotate_once_and_never_fork_the_family(
    two_workers: ServiceProcess, database: Database
) -> None:
    limits = httpx.Limits(max_connections=RACERS)
    async with httpx.AsyncClient(base_url=two_workers.url, limits=limits, timeout=30) as http:
        tokens = await tokens_for(http, "process-refresher", issuer=two_workers.url)
        responses = await asyncio.gather(
            *(refresh(http, tokens.client, tokens.refresh_token) for _ in range(RACERS))
        )
        statuses = Counter(response.status_code for response in responses)
        assert set(statuses) <= {200, 400}, statuses
        assert 1 <= statuses[200] <= 2, statuses  # the rotation and at most one grace-window retry
        assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
        issued = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
        later = [(await refresh(http, tokens.client, token)).status_code for token in issued]

    [grant] = await all_rows(database, Grant, Grant.client_id == tokens.client["client_id"])
    family = await all_rows(database, RefreshToken, RefreshToken.grant_id == grant.id)
    assert len(family) == 1 + statuses[200]  # one new token per success, none half-written
    if statuses[400]:
        # A rotated token presented again revoked the family: nothing it issued works any more.
        assert grant.revoked_reason == "refresh_token_reuse"
        assert set(later) == {400}
