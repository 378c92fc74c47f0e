"""Secrets at rest: a copy of the database gives an attacker nothing they can present.

Covers RFC 6749 §10.3 / §10.5 and RFC 9700 §4.14 / §4.15 (tokens and codes kept confidential),
OAuth 2.1 §7.7 (client secrets), RFC 6819 §5.1.4.1.3 (store hashes of secrets, not secrets):
codes, refresh tokens, client secrets, browser session ids, consent request ids and the
upstream `state` appear only as SHA-256 hashes; the upstream (GitHub) token only as AES-256-GCM
ciphertext bound to its identity row, so it does not decrypt when copied into another row.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from mcp_auth_server.crypto.opaque_tokens import hash_secret
from mcp_auth_server.crypto.secret_box import DecryptionError, SecretBox
from mcp_auth_server.db.models import Base, UpstreamIdentity, User
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.users import upstream_tokens
from mcp_testing.browser import Arrival, Page
from mcp_testing.github_standin import GitHubStandIn

from ..conftest import TEST_SECRET
from ..flow import (
    Database,
    GitHubService,
    all_rows,
    assert_oauth_error,
    browser_for,
    execute,
    github_service,
    github_tokens,
    new_request,
    query,
    redeem,
    refresh,
    register,
    to_github_callback,
)

UPSTREAM_TOKEN_BOX = SecretBox(TEST_SECRET.encode(), "upstream-token")


async def database_dump(database: Database) -> str:
    """Every row of every table as text, bytes included, so a secret anywhere shows up in it."""
    parts: list[str] = []
    async with database() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for value in row:
                    parts.append(value.hex() + repr(value) if isinstance(value, bytes) else repr(value))
    return "\n".join(parts)


def assert_absent(dump: str, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        assert secret not in dump, f"the {name} is stored in clear"


def assert_hashed(dump: str, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        assert hash_secret(secret) in dump, f"the {name}'s hash is not where lookups need it"


async def test_database_holds_only_hashes_of_issued_secrets_and_ciphertext_of_the_github_token(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    github.state.add_user("hoarder", orgs=["acme"])
    async with github_service(make_settings, github) as service:
        registered = await register(service.client, token_endpoint_auth_method="client_secret_post")
        request = new_request(registered["client_id"])
        browser = browser_for(service.client)
        consent = await browser.open(request.url())
        assert isinstance(consent, Page)
        request_id = consent.forms()[0].fields["request_id"]
        callback = await to_github_callback(service, browser, request.url(), "hoarder")
        upstream_state = query(callback)["state"]
        github_code = query(callback)["code"]

        in_flight = await database_dump(database)  # mid sign-in: the state is stored, hashed
        assert_absent(in_flight, {"upstream state": upstream_state})
        assert_hashed(in_flight, {"upstream state": upstream_state})

        arrival = await browser.open(callback)
        assert isinstance(arrival, Arrival)
        code = query(arrival.url)["code"]
        response = await redeem(service.client, request, code, client_secret=registered["client_secret"])
        assert response.status_code == 200, response.text
        refresh_token, access_token = response.json()["refresh_token"], response.json()["access_token"]
        cookies = {cookie.name: cookie.value for cookie in service.client.cookies.jar}
        [github_token] = list(github.state.tokens)

    dump = await database_dump(database)
    issued = {
        "authorization code": code,
        "refresh token": refresh_token,
        "client secret": registered["client_secret"],
        "browser session id": cookies["mcp_auth_session"],
        "browser binding": cookies["mcp_auth_browser"],
    }
    never_stored = {"request id": request_id, "GitHub code": github_code, "access token": access_token}
    assert_absent(dump, {**issued, **never_stored, "GitHub token": github_token})
    assert_hashed(dump, issued)


async def stored_identities(database: Database) -> list[UpstreamIdentity]:
    return await all_rows(database, UpstreamIdentity, UpstreamIdentity.provider == "github")


async def sign_in_two_users(service: GitHubService) -> None:
    service.github.state.add_user("victim")
    service.github.state.add_user("attacker")
    await github_tokens(service, "victim")
    await github_tokens(service, "attacker")


async def test_github_token_is_aes_gcm_ciphertext_bound_to_its_identity_row(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    async with github_service(make_settings, github) as service:
        await sign_in_two_users(service)
    tokens_by_login = {token.login: token.value for token in github.state.tokens.values()}
    identities = await stored_identities(database)
    users = {user.id: user.login for user in await all_rows(database, User)}
    by_login = {users[identity.user_id]: identity for identity in identities}
    victim, attacker = by_login["victim"], by_login["attacker"]

    assert victim.access_token_encrypted is not None
    assert tokens_by_login["victim"].encode() not in victim.access_token_encrypted
    assert (
        len(victim.access_token_encrypted) == 1 + 12 + len(tokens_by_login["victim"]) + 16
    )  # version, nonce, tag
    decrypted = upstream_tokens(victim, UPSTREAM_TOKEN_BOX)
    assert decrypted is not None
    assert decrypted.access_token == tokens_by_login["victim"]

    # The swap a database writer would try: bound to the victim's row, it fails for any other.
    with pytest.raises(DecryptionError):
        UPSTREAM_TOKEN_BOX.decrypt(victim.access_token_encrypted, bound_to=attacker.id)
    attacker.access_token_encrypted = victim.access_token_encrypted
    assert upstream_tokens(attacker, UPSTREAM_TOKEN_BOX) is None  # no token rather than the victim's
    with pytest.raises(DecryptionError):  # nor under another purpose's key
        SecretBox(TEST_SECRET.encode(), "signing-key").decrypt(
            victim.access_token_encrypted, bound_to=victim.id
        )


async def test_github_token_copied_into_another_users_row_gives_that_user_nothing(
    make_settings: Callable[..., AuthSettings], github: GitHubStandIn, database: Database
) -> None:
    async with github_service(make_settings, github) as service:
        github.state.add_user("victim2")
        github.state.add_user("attacker2")
        await github_tokens(service, "victim2")
        attacker_tokens = await github_tokens(service, "attacker2")
        users = {user.login: user.id for user in await all_rows(database, User)}
        identities = {identity.user_id: identity for identity in await stored_identities(database)}
        stolen = identities[users["victim2"]].access_token_encrypted
        await execute(
            database,
            update(UpstreamIdentity)
            .where(UpstreamIdentity.user_id == users["attacker2"])
            .values(access_token_encrypted=stolen, checked_at=0),
        )
        # The refresh re-check cannot read a token for the attacker: the grant ends, no 500.
        response = await refresh(service.client, attacker_tokens.client, attacker_tokens.refresh_token)
        assert_oauth_error(response, "invalid_grant")


async def test_stored_secret_columns_are_sha256_hex(database: Database) -> None:
    # The shape of every hash column, whatever rows other tests left behind.
    async with database() as session:
        for table, column in (
            ("authorization_codes", "code_hash"),
            ("refresh_tokens", "token_hash"),
            ("browser_sessions", "id_hash"),
            ("authorization_requests", "upstream_state_hash"),
            ("clients", "client_secret_hash"),
        ):
            stored = Base.metadata.tables[table].c[column]
            values = list((await session.execute(select(stored).where(stored.is_not(None)))).scalars())
            assert all(re.fullmatch("[0-9a-f]{64}", value) for value in values), (table, values[:3])
