"""Authorization code theft, replay and injection at the token endpoint.

Covers RFC 6749 §4.1.2 and §10.5 (codes are short-lived and single-use; a replay revokes what
the code produced), §4.1.3 (bound to the client and the redirect URI), OAuth 2.1 §4.1.3 and
RFC 9700 §4.5 (injection). Concurrent redemptions are raced in process and against a real
`mcp-auth serve` with two worker processes on Postgres: exactly one wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import update

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.db.models import AuthorizationCode, Grant, RevokedAccessToken
from mcp_testing.processes import ServiceProcess

from ..auth_process import dev_auth_service
from ..flow import (
    AuthorizationRequest,
    Database,
    all_rows,
    approve_and_sign_in,
    assert_oauth_error,
    audit_events,
    browser_for,
    execute,
    new_request,
    redeem,
    refresh,
    register,
    token_claims,
)

RACERS = 50


async def fresh_code(
    client: httpx.AsyncClient, username: str, **registration: object
) -> tuple[dict[str, object], AuthorizationRequest, str]:
    registered = await register(client, **registration)
    request = new_request(str(registered["client_id"]))
    answer = await approve_and_sign_in(browser_for(client), request.url(), username)
    return registered, request, answer["code"]


async def test_replayed_code_is_refused_and_revokes_the_tokens_it_produced(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    registered, request, code = await fresh_code(auth_client, "replay-victim")
    first = await redeem(auth_client, request, code)
    assert first.status_code == 200, first.text
    tokens = first.json()

    assert_oauth_error(await redeem(auth_client, request, code), "invalid_grant")

    # The refresh token of the first redemption is dead: its grant was revoked (RFC 6749 §4.1.2).
    assert_oauth_error(await refresh(auth_client, registered, tokens["refresh_token"]), "invalid_grant")
    grants = await all_rows(database, Grant, Grant.client_id == registered["client_id"])
    assert [(grant.revoked_reason, grant.revoked_at is not None) for grant in grants] == [
        ("code_replay", True)
    ]
    # And its access token is on the deny list resource servers consult (introspection, exchange).
    jti = (await token_claims(auth_client, tokens["access_token"]))["jti"]
    assert await all_rows(database, RevokedAccessToken, RevokedAccessToken.jti == jti)
    assert await audit_events(database, "code_replay", str(registered["client_id"]))


async def test_code_stolen_by_another_client_is_refused(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await fresh_code(auth_client, "stolen-code")
    attacker = await register(auth_client, client_name="Attacker")
    response = await redeem(auth_client, request, code, client_id=attacker["client_id"])
    assert_oauth_error(response, "invalid_grant")


async def test_code_stolen_by_another_confidential_client_is_refused(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await fresh_code(auth_client, "stolen-code-2")
    attacker = await register(auth_client, token_endpoint_auth_method="client_secret_post")
    response = await redeem(
        auth_client, request, code, client_id=attacker["client_id"], client_secret=attacker["client_secret"]
    )
    assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [None, "", "http://127.0.0.1:33418/other", "http://127.0.0.1:33419/callback", "https://evil.example/cb"],
    ids=["missing", "empty", "other_path", "other_port", "other_host"],
)
async def test_code_redeemed_with_another_redirect_uri_is_refused(
    auth_client: httpx.AsyncClient, redirect_uri: str | None
) -> None:
    _, request, code = await fresh_code(auth_client, "redirect-bound")
    response = await redeem(auth_client, request, code, redirect_uri=redirect_uri)
    assert_oauth_error(response, "invalid_grant")


async def test_expired_code_is_refused(auth_client: httpx.AsyncClient, database: Database) -> None:
    _, request, code = await fresh_code(auth_client, "slow-client")
    await execute(
        database,
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == hash_secret(code))
        .values(expires_at=now() - 1),
    )
    assert_oauth_error(await redeem(auth_client, request, code), "invalid_grant")


async def test_unknown_code_is_refused(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await fresh_code(auth_client, "unknown-code")
    assert_oauth_error(await redeem(auth_client, request, code + "x"), "invalid_grant")


async def test_code_is_stored_only_as_a_short_lived_hash(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    _, _, code = await fresh_code(auth_client, "short-lived")
    [row] = await all_rows(database, AuthorizationCode, AuthorizationCode.code_hash == hash_secret(code))
    assert row.expires_at - row.created_at == 60  # AUTH_CODE_TTL's default
    assert len(code) >= 43  # 256 bits


async def race(client: httpx.AsyncClient, request: AuthorizationRequest, code: str) -> list[httpx.Response]:
    return list(await asyncio.gather(*(redeem(client, request, code) for _ in range(RACERS))))


def assert_exactly_one_winner(responses: list[httpx.Response]) -> None:
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * (RACERS - 1), statuses
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"] == "invalid_grant"


async def test_concurrent_redemptions_of_one_code_in_process_yield_exactly_one_token(
    auth_client: httpx.AsyncClient,
) -> None:
    _, request, code = await fresh_code(auth_client, "racer")
    assert_exactly_one_winner(await race(auth_client, request, code))


@pytest.fixture
def auth_process(migrated_database: str) -> Iterator[ServiceProcess]:
    """`mcp-auth serve` with two worker processes: the race crosses processes, not just tasks."""
    with dev_auth_service(migrated_database, workers=2) as service:
        yield service.process


async def test_concurrent_redemptions_of_one_code_across_server_processes_yield_exactly_one_token(
    auth_process: ServiceProcess,
) -> None:
    limits = httpx.Limits(max_connections=RACERS)
    async with httpx.AsyncClient(base_url=auth_process.url, limits=limits, timeout=30) as client:
        registered = await register(client)
        request = new_request(str(registered["client_id"]), issuer=auth_process.url)
        answer = await approve_and_sign_in(browser_for(client), request.url(), "process-racer")
        assert answer["iss"] == auth_process.url
        assert_exactly_one_winner(await race(client, request, answer["code"]))
