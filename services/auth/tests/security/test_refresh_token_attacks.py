"""Refresh token theft and replay: rotation, reuse detection, client binding, concurrency.

Covers OAuth 2.1 §4.3.1 and RFC 9700 §4.14.2 (public clients' refresh tokens are rotated; a
reused, already-rotated token revokes the whole family), RFC 6749 §6 and §10.4 (bound to the
client it was issued to) and §5.2 (`invalid_grant`). The grace window for the immediately
previous token (AUTH_REFRESH_GRACE_SECONDS, a lost response or two egress addresses) is
tested by moving `rotated_at` in the database, never by waiting.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import update

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.db.models import Grant, RefreshToken
from mcp_auth_server.store.grants import is_live

from ..flow import (
    Database,
    Tokens,
    all_rows,
    assert_oauth_error,
    audit_events,
    execute,
    refresh,
    register,
    tokens_for,
)

GRACE = 45  # AUTH_REFRESH_GRACE_SECONDS' default
RACERS = 50


async def rotated(client: httpx.AsyncClient, tokens: Tokens, refresh_token: str) -> str:
    response = await refresh(client, tokens.client, refresh_token)
    assert response.status_code == 200, response.text
    fresh = str(response.json()["refresh_token"])
    assert fresh != refresh_token
    return fresh


async def grants_of(database: Database, tokens: Tokens) -> list[Grant]:
    return await all_rows(database, Grant, Grant.client_id == tokens.client["client_id"])


async def rotated_long_ago(database: Database, refresh_token: str) -> None:
    await execute(
        database,
        update(RefreshToken)
        .where(RefreshToken.token_hash == hash_secret(refresh_token))
        .values(rotated_at=now() - GRACE - 1),
    )


async def test_refresh_rotates_the_token_every_time(auth_client: httpx.AsyncClient) -> None:
    tokens = await tokens_for(auth_client, "rotator")
    seen = {tokens.refresh_token}
    current = tokens.refresh_token
    for _ in range(3):
        current = await rotated(auth_client, tokens, current)
        assert current not in seen
        seen.add(current)


async def test_previous_token_reused_within_the_grace_window_works_exactly_once(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    tokens = await tokens_for(auth_client, "lost-response")
    current = await rotated(auth_client, tokens, tokens.refresh_token)
    retry = await rotated(auth_client, tokens, tokens.refresh_token)  # the response was lost; retried
    assert retry != current

    assert_oauth_error(await refresh(auth_client, tokens.client, tokens.refresh_token), "invalid_grant")
    # A third presentation is reuse: the whole family is revoked, including both live tokens.
    assert_oauth_error(await refresh(auth_client, tokens.client, current), "invalid_grant")
    assert_oauth_error(await refresh(auth_client, tokens.client, retry), "invalid_grant")
    [grant] = await grants_of(database, tokens)
    assert grant.revoked_reason == "refresh_token_reuse"


async def test_rotated_token_reused_after_the_grace_window_revokes_the_family(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    tokens = await tokens_for(auth_client, "stolen-refresh")
    current = await rotated(auth_client, tokens, tokens.refresh_token)
    await rotated_long_ago(database, tokens.refresh_token)

    assert_oauth_error(await refresh(auth_client, tokens.client, tokens.refresh_token), "invalid_grant")
    assert_oauth_error(await refresh(auth_client, tokens.client, current), "invalid_grant")
    [grant] = await grants_of(database, tokens)
    assert not is_live(grant)
    assert grant.revoked_reason == "refresh_token_reuse"
    [event] = await audit_events(database, "refresh_token_reuse", tokens.client["client_id"])
    assert event.details["grant_id"] == grant.id
    assert event.details["generation"] == 1


async def test_token_two_generations_back_revokes_the_family_even_within_the_grace_window(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    tokens = await tokens_for(auth_client, "two-back")
    second = await rotated(auth_client, tokens, tokens.refresh_token)
    third = await rotated(auth_client, tokens, second)
    assert_oauth_error(await refresh(auth_client, tokens.client, tokens.refresh_token), "invalid_grant")
    assert_oauth_error(await refresh(auth_client, tokens.client, third), "invalid_grant")
    assert await audit_events(database, "refresh_token_reuse", tokens.client["client_id"])


async def test_refresh_token_presented_by_another_client_is_refused(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    tokens = await tokens_for(auth_client, "bound-refresh")
    thief = await register(auth_client, client_name="Thief")
    assert_oauth_error(await refresh(auth_client, thief, tokens.refresh_token), "invalid_grant")
    confidential_thief = await register(auth_client, token_endpoint_auth_method="client_secret_post")
    assert_oauth_error(await refresh(auth_client, confidential_thief, tokens.refresh_token), "invalid_grant")
    await rotated(auth_client, tokens, tokens.refresh_token)  # the owner is unaffected


async def test_unknown_refresh_token_is_refused(auth_client: httpx.AsyncClient) -> None:
    tokens = await tokens_for(auth_client, "unknown-refresh")
    for presented in (tokens.refresh_token + "x", "x", tokens.access_token, "\x00"):
        assert_oauth_error(await refresh(auth_client, tokens.client, presented), "invalid_grant")


async def test_refresh_of_an_expired_grant_is_refused(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    tokens = await tokens_for(auth_client, "expired-grant")
    await execute(
        database,
        update(Grant).where(Grant.client_id == tokens.client["client_id"]).values(expires_at=now() - 1),
    )
    assert_oauth_error(await refresh(auth_client, tokens.client, tokens.refresh_token), "invalid_grant")


async def test_confidential_clients_refresh_token_without_its_secret_is_invalid_client(
    auth_client: httpx.AsyncClient,
) -> None:
    tokens = await tokens_for(
        auth_client, "confidential-refresh", registration={"token_endpoint_auth_method": "client_secret_post"}
    )
    without_secret = {key: value for key, value in tokens.client.items() if key != "client_secret"}
    assert_oauth_error(
        await refresh(auth_client, without_secret, tokens.refresh_token), "invalid_client", 401
    )


async def test_concurrent_refreshes_of_one_token_never_fail_with_500_nor_fork_the_family(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    # Observed (and intended): the refreshes serialise on the grant row. The first rotates, the
    # second is the grace-window retry of the same token, the third is reuse and revokes the
    # family — so after a burst like this nothing of the family works, and every other request
    # gets invalid_grant. No request fails with a 5xx and no second grant appears.
    tokens = await tokens_for(auth_client, "burst")
    responses = await asyncio.gather(
        *(refresh(auth_client, tokens.client, tokens.refresh_token) for _ in range(RACERS))
    )
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {200, 400}, statuses
    assert 1 <= statuses[200] <= 2, statuses  # the rotation and at most one grace-window retry
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)

    grants = await grants_of(database, tokens)
    assert len(grants) == 1
    family = await all_rows(database, RefreshToken, RefreshToken.grant_id == grants[0].id)
    assert len(family) == 1 + statuses[200]  # one new token per success, none half-written
    if statuses[400]:
        assert grants[0].revoked_reason == "refresh_token_reuse"
    issued = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
    still_working = [t for t in issued if (await refresh(auth_client, tokens.client, t)).status_code == 200]
    assert still_working == []
