"""Storage: SQLAlchemy models, the async engine and alembic migrations."""
