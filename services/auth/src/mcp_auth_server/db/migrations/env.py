"""Alembic environment: runs on the connection handed over by db/migrate.py."""

from alembic import context

from mcp_auth_server.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode recreates tables there and is a no-op elsewhere.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
