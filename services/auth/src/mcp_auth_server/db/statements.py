"""Hand-written SQL for the token endpoint's hot paths, run in the request session's transaction.

Through SQLAlchemy's async session a statement costs about 100 µs more CPU than the same
statement sent with asyncpg (README → Benchmarks): most of a refresh. So the few statements every
refresh and code exchange runs are `Statement`s, kept in the store module each belongs to, in SQL
that PostgreSQL and SQLite both accept, with `:name` parameters. `Sql` sends them on Postgres
straight through the session's own asyncpg connection, inside the transaction the session holds,
so they commit or roll back with everything else: the session's first statement begins that
transaction through SQLAlchemy's asyncpg adapter, as SQLAlchemy itself would, and the session's
COMMIT or ROLLBACK ends it; on SQLite (`make dev`) through SQLAlchemy.

JSON columns travel as text: list and dict parameters are encoded here, and the columns a
statement names in `json_columns` are decoded from its rows.

Column lists come from the models (`columns`, `insert_into`, `json_columns_of`): each name is checked
against the model when the module is imported, so a renamed column fails at start-up, not mid-request.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from sqlalchemy import JSON, Table, TextClause, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mcp_auth_server.db.models import Base

_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
# SQLSTATEs meaning "the database is not there right now" (PostgreSQL manual, Appendix A): class 08
# connection exceptions, 57P01-57P03 shutting down / crashed / starting up, 53300 too many connections.
UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")
_SESSION_KEY = "mcp_auth_server.sql"
LOCK = "{lock}"  # where in a statement's SQL its Postgres locking clause goes


@dataclass(frozen=True)
class Statement:
    sql: str
    json_columns: frozenset[str] = frozenset()
    # A locking clause for Postgres (FOR UPDATE ...), appended, or put where the SQL says `{lock}` (a
    # sub-select's); SQLite serialises writers itself and gets none.
    lock: str = ""
    # May run before the session has begun a transaction (autocommit): a read that needs none, or a
    # request's only write (store/audit.record_now). Once the session has begun one, it runs in it.
    outside_transaction: bool = False
    _text: TextClause = field(init=False, repr=False, compare=False)
    _postgres_text: TextClause = field(init=False, repr=False, compare=False)
    _positional: str = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        lock = f" {self.lock}" if self.lock else ""
        placed = LOCK in self.sql
        sqlite = self.sql.replace(LOCK, "")
        postgres = self.sql.replace(LOCK, lock) if placed else self.sql + lock
        object.__setattr__(self, "_text", text(sqlite))
        object.__setattr__(self, "_postgres_text", text(postgres))
        object.__setattr__(self, "_positional", _PARAMETER.sub(number, postgres))
        object.__setattr__(self, "_names", tuple(names))


class Sql:
    """Runs `Statement`s on a session's connection; get one with `await Sql.of(session)`."""

    def __init__(
        self, connection: AsyncConnection, driver: asyncpg.Connection | None, adapter: Any = None
    ) -> None:
        self._connection = connection
        self._driver = driver
        self._adapter = adapter  # SQLAlchemy's asyncpg adapter of `driver`, which tracks its transaction

    @classmethod
    async def of(cls, session: AsyncSession) -> Sql:
        """The session's `Sql`, kept while its connection is: each lookup costs two greenlet hops."""
        known: Sql | None = session.info.get(_SESSION_KEY)
        if known is not None and not (known._connection.closed or known._connection.invalidated):
            return known
        connection = await session.connection()
        driver = adapter = None
        if connection.dialect.driver == "asyncpg":
            raw = await connection.get_raw_connection()
            driver, adapter = raw.driver_connection, raw.dbapi_connection
            assert isinstance(driver, asyncpg.Connection)
        session.info[_SESSION_KEY] = sql = cls(connection, driver, adapter)
        return sql

    async def row(self, statement: Statement, **params: Any) -> dict[str, Any] | None:
        rows = await self.rows(statement, **params)
        return rows[0] if rows else None

    async def rows(self, statement: Statement, **params: Any) -> list[dict[str, Any]]:
        values = {name: _encode(value) for name, value in params.items()}
        driver = self._driver
        if driver is not None and not (statement.outside_transaction or driver.is_in_transaction()):
            await self._begin()
        if driver is not None and (statement.outside_transaction or driver.is_in_transaction()):
            found = await self._fetch(statement, [values[name] for name in statement._names])
        else:
            # SQLite; or on Postgres a first statement when the adapter could not begin (see _begin).
            clause = statement._text if self._driver is None else statement._postgres_text
            result = await self._connection.execute(clause, values)
            found = [dict(row._mapping) for row in result] if result.returns_rows else []
        for row in found:
            for column in statement.json_columns:
                if isinstance(row[column], str):
                    row[column] = json.loads(row[column])
        return found

    async def execute(self, statement: Statement, **params: Any) -> None:
        await self.rows(statement, **params)

    async def execute_together(self, *statements: Statement, **params: Any) -> None:
        """Run writes none of which reads what another changes, sharing parameters by name.

        On Postgres they travel as one statement (data-modifying CTEs: one round trip, one snapshot,
        so none sees another's effects); on SQLite one after another, where that gives the same result.
        """
        if self._driver is None:
            for statement in statements:
                await self.execute(statement, **{name: params[name] for name in statement._names})
        else:
            await self.execute(_together(statements), **params)

    async def _begin(self) -> None:
        """BEGIN the session's transaction the way SQLAlchemy's asyncpg adapter does before its first
        statement, so that the session's COMMIT or ROLLBACK ends it: sending the first statement through
        SQLAlchemy instead costs about 140 µs more CPU (docs/benchmarks.md). The adapter's hooks are
        private; should a SQLAlchemy release drop them, the first statement goes through SQLAlchemy again."""
        start = getattr(self._adapter, "_start_transaction", None)
        if start is None or getattr(self._adapter, "_transaction", True) is not None:
            return
        try:
            await start()
        except Exception as error:  # the adapter's own (PEP 249) errors: the connection failed
            with contextlib.suppress(DBAPIError):
                await self._connection.exec_driver_sql("SELECT 1")  # SQLAlchemy finds it dead, drops it
            raise OperationalError("BEGIN", None, error) from error

    async def _fetch(self, statement: Statement, args: list[Any]) -> list[dict[str, Any]]:
        assert self._driver is not None
        try:
            return [dict(record) for record in await self._driver.fetch(statement._positional, *args)]
        except TimeoutError as error:  # the query was cancelled; its connection lives on
            raise OperationalError(statement.sql, args, error) from error
        except (asyncpg.PostgresError, asyncpg.exceptions.DataError) as error:
            if not str(getattr(error, "sqlstate", "")).startswith(UNAVAILABLE_SQLSTATES):
                # Reported as SQLAlchemy reports its own: the app answers a value the database
                # refuses (class 22) with 400, anything else is a bug (app.py).
                raise DBAPIError(statement.sql, args, error) from error
            failure: Exception = error
        except (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as error:
            failure = error  # e.g. "another operation is in progress" on a connection the server cut
        # The connection failed. SQLAlchemy finds it dead too and drops it (and the pool) as it does
        # for its own statements; the app answers 503 with Retry-After.
        with contextlib.suppress(DBAPIError):
            await self._connection.exec_driver_sql("SELECT 1")
        raise OperationalError(statement.sql, args, failure) from failure


def holds_transaction(session: AsyncSession) -> bool:
    """Whether the session may have a database transaction to end. Not when it is on Postgres and every
    statement it sent went through `Sql` outside a transaction: each was committed as it ran."""
    sql: Sql | None = session.info.get(_SESSION_KEY)
    if sql is None or sql._driver is None or sql._connection.closed or sql._connection.invalidated:
        return True
    return sql._driver.is_in_transaction()


@functools.cache
def _together(statements: tuple[Statement, ...]) -> Statement:
    *first, last = statements
    ctes = ", ".join(f"w{index} AS ({statement.sql})" for index, statement in enumerate(first))
    return Statement(f"WITH {ctes} {last.sql}")


def _encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | Mapping) else value


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _checked(model: type[Base], names: tuple[str, ...]) -> tuple[str, ...]:
    table = _table(model)
    chosen = names or tuple(column.name for column in table.columns)
    unknown = [name for name in chosen if name not in table.columns]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    return chosen


def columns(model: type[Base], *names: str, alias: str = "", **renamed: str) -> str:
    """A select list of `model`'s columns (all of them, or `names`), prefixed with the table's `alias`;
    `renamed` selects columns under another name (`identity_id="id"`: `ui.id AS identity_id`)."""
    prefix = f"{alias}." if alias else ""
    listed = [f"{prefix}{name}" for name in _checked(model, names)] if names or not renamed else []
    if renamed:
        originals = _checked(model, tuple(renamed.values()))
        listed += [f"{prefix}{name} AS {new}" for new, name in zip(renamed, originals, strict=True)]
    return ", ".join(listed)


def insert_into(model: type[Base], **values: str) -> str:
    """`INSERT INTO <table> (<columns>) VALUES (<expressions>)`; `values` maps each column to its SQL."""
    names = _checked(model, tuple(values))
    table = _table(model).name
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values[name] for name in names)})"


def json_columns_of(model: type[Base], *names: str) -> frozenset[str]:
    """The JSON-typed ones among `model`'s columns (all of them, or `names`)."""
    table = _table(model)
    return frozenset(name for name in _checked(model, names) if isinstance(table.columns[name].type, JSON))
