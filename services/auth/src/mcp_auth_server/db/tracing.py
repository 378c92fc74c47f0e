"""Database spans when tracing is on (mcp_auth_kit/tracing.py): the ORM's statements and the hot paths'.

The token endpoint's statements run on the session's asyncpg connection directly (db/statements.py),
below SQLAlchemy, so both instrumentations are needed to see every statement.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_auth_kit.tracing import tracer_provider

_asyncpg_instrumented = False


def trace_database(engine: AsyncEngine) -> None:
    """Spans for `engine`'s statements; nothing at all when tracing is off."""
    global _asyncpg_instrumented
    provider = tracer_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)
    if engine.dialect.name == "postgresql" and not _asyncpg_instrumented:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        _asyncpg_instrumented = True
