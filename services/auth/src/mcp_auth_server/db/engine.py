"""The async engine and session factory, built once per app from the database URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from mcp_auth_server.settings import AuthSettings


@dataclass(frozen=True)
class PoolOptions:
    """The PostgreSQL pool of one process (AUTH_DATABASE_POOL_*; sizing: docs/deployment.md).

    Sized for the requests a worker has in flight, without overflow by default: an overflow connection
    is closed as soon as it is returned, so a steady load above the pool would start a PostgreSQL
    backend for about every tenth request (measured: 255 new sessions in 5 s at 32 in flight with
    10 + 10), costing the database more CPU than the request itself."""

    size: int = 20
    max_overflow: int = 0
    timeout: float = 5  # fail fast when Postgres is down rather than letting requests hang
    recycle: int = 3600  # 0: never

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> PoolOptions:
        return cls(
            settings.auth_database_pool_size,
            settings.auth_database_max_overflow,
            settings.auth_database_pool_timeout,
            settings.auth_database_pool_recycle,
        )


def create_engine(url: str, pool: PoolOptions = PoolOptions(), **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", pool.size)
    kwargs.setdefault("max_overflow", pool.max_overflow)
    # No pool_pre_ping: on asyncpg it costs three round trips per checkout. A connection that died
    # (Postgres restarted) fails its request with 503 instead, and SQLAlchemy then drops the pool.
    kwargs.setdefault("pool_timeout", pool.timeout)
    kwargs.setdefault("pool_recycle", pool.recycle or -1)
    connect_args = {"timeout": 5, "command_timeout": 10}
    return create_async_engine(url, connect_args=connect_args, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
