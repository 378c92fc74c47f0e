"""The hot paths' hand-written SQL (db/statements.py) behaves the same on PostgreSQL and SQLite.

On Postgres it runs on asyncpg inside the session's transaction; on SQLite (`make dev`) through
SQLAlchemy. Both engines go through a whole token lifecycle here over HTTP: code exchange,
rotation, the grace window and reuse detection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mcp_auth_server.app import create_app
from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.migrate import upgrade
from mcp_auth_server.db.models import Client, Grant
from mcp_auth_server.db.statements import Sql, Statement, _together, columns, insert_into
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.clients import create_client, get_client, read_client

from ..conftest import serve_in_process
from ..flow import assert_oauth_error, refresh, tokens_for


def test_named_parameters_become_numbered_ones_in_order_of_first_use() -> None:
    statement = Statement("UPDATE t SET a = :a, b = :b WHERE a = :a AND c::text = :c", lock="FOR UPDATE")
    assert statement._positional == "UPDATE t SET a = $1, b = $2 WHERE a = $1 AND c::text = $3 FOR UPDATE"
    assert statement._names == ("a", "b", "c")


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, migrated_database: str, tmp_path: Path) -> str:
    if request.param == "postgres":
        return migrated_database
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def client_on(
    database_url: str, make_settings: Callable[..., AuthSettings]
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings(auth_database_url=database_url))) as client:
        yield client


async def test_a_token_family_lives_and_dies_by_the_same_rules_on_both_engines(
    client_on: httpx.AsyncClient, database_url: str
) -> None:
    tokens = await tokens_for(client_on, "engines", scope="mcp:tools offline_access")
    first = tokens.refresh_token
    second = (await refresh(client_on, tokens.client, first)).json()["refresh_token"]
    retried = await refresh(client_on, tokens.client, first)  # a lost response, within the grace window
    assert retried.status_code == 200, retried.text
    assert retried.json()["scope"] == "mcp:tools offline_access"
    assert_oauth_error(await refresh(client_on, tokens.client, first), "invalid_grant")  # reuse
    assert_oauth_error(await refresh(client_on, tokens.client, second), "invalid_grant")  # family revoked

    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            # The Postgres database is shared with other tests: only this client's grant.
            mine = select(Grant).where(Grant.client_id == tokens.client["client_id"])
            [grant] = (await session.scalars(mine)).all()
            # The retry within the grace window made a sibling of generation 2, not a generation 3.
            assert (grant.generation, grant.revoked_reason) == (2, "refresh_token_reuse")
            assert grant.scopes == ["mcp:tools", "offline_access"]
    finally:
        await engine.dispose()


async def test_statements_join_the_transaction_the_session_holds(database_url: str) -> None:
    engine = create_engine(database_url)
    statement = Statement("SELECT count(*) AS n FROM resources WHERE resource = :resource")
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(
                text(
                    "INSERT INTO resources (resource, scopes, default_scopes, created_at)"
                    " VALUES ('urn:x', '[]', '[]', 0)"
                )
            )
            sql = await Sql.of(session)
            assert await sql.row(statement, resource="urn:x") == {"n": 1}  # sees the uncommitted row
            await session.rollback()
        async with create_session_factory(engine)() as session:
            assert await (await Sql.of(session)).row(statement, resource="urn:x") == {"n": 0}
    finally:
        await engine.dispose()


async def test_a_value_postgres_refuses_is_reported_with_its_sqlstate(migrated_database: str) -> None:
    engine = create_engine(migrated_database)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(text("SELECT 1"))  # begun: what follows goes straight to asyncpg
            sql = await Sql.of(session)
            with pytest.raises(DBAPIError) as refused:
                await sql.row(Statement("SELECT :value::text AS v"), value="nul\x00byte")
            assert not isinstance(refused.value, OperationalError)
            assert refused.value.orig.sqlstate.startswith("22")  # type: ignore[union-attr]  # a data exception: 400
    finally:
        await engine.dispose()


async def test_a_connection_that_dies_is_an_outage_and_leaves_the_pool(migrated_database: str) -> None:
    engine = create_engine(migrated_database, pool_size=1, max_overflow=0)
    try:
        async with create_session_factory(engine)() as session:
            sql = await Sql.of(session)
            backend = await sql.row(Statement("SELECT pg_backend_pid() AS pid"))
            assert backend is not None
            killer = create_engine(migrated_database)
            async with killer.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend["pid"]})
            await killer.dispose()
            with pytest.raises(OperationalError):  # the app answers 503 + Retry-After
                await sql.row(Statement("SELECT 1 AS one"))
        async with create_session_factory(engine)() as session:  # a new connection, not the dead one
            assert await (await Sql.of(session)).row(Statement("SELECT 1 AS one")) == {"one": 1}
    finally:
        await engine.dispose()


async def test_the_cheap_client_lookup_reads_what_the_orm_reads(database_url: str) -> None:
    engine = create_engine(database_url)
    columns = [column.key for column in Client.__table__.columns]
    try:
        async with create_session_factory(engine)() as session:
            create_client(
                session,
                origin="machine",
                redirect_uris=[],
                token_endpoint_auth_method="client_secret_basic",
                grant_types=["client_credentials"],
                allowed_resources=["https://mcp.example.com/mcp"],
                allowed_scopes=["mcp:tools"],
                client_id="lookup",
            )
            await session.commit()
        async with create_session_factory(engine)() as session:
            orm = await get_client(session, "lookup")
        async with create_session_factory(engine)() as session:
            read = await read_client(session, "lookup")
            assert await read_client(session, "nul\x00") is None
        assert orm is not None
        assert read is not None
        assert [getattr(read, name) for name in columns] == [getattr(orm, name) for name in columns]
    finally:
        await engine.dispose()


def test_writes_sent_together_are_one_statement_of_data_modifying_ctes() -> None:
    together = _together((Statement("UPDATE a SET x = :x"), Statement("INSERT INTO b VALUES (:x, :y)")))
    assert together.sql == "WITH w0 AS (UPDATE a SET x = :x) INSERT INTO b VALUES (:x, :y)"
    assert together._positional == "WITH w0 AS (UPDATE a SET x = $1) INSERT INTO b VALUES ($1, $2)"


async def test_a_session_keeps_its_sql_only_while_it_keeps_its_connection(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            first = await Sql.of(session)
            assert await Sql.of(session) is first
            await session.commit()  # the connection went back to the pool
            second = await Sql.of(session)
            assert second is not first
            assert await second.row(Statement("SELECT 1 AS one")) == {"one": 1}
            await session.rollback()
            assert await Sql.of(session) is not second
    finally:
        await engine.dispose()


def test_a_column_the_models_do_not_have_fails_when_the_statement_is_built() -> None:
    """Hand-written statements take their column lists from the models: drift fails at import."""
    assert columns(Grant, "id", "resource", alias="g") == "g.id, g.resource"
    assert columns(Grant, alias="g", newest="generation") == "g.generation AS newest"
    with pytest.raises(ValueError, match="grants has no column audience"):
        columns(Grant, "audience")
    with pytest.raises(ValueError, match="grants has no column revoked"):
        insert_into(Grant, revoked=":revoked")
