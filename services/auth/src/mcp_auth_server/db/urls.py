"""Database URLs as operators paste them, turned into the async drivers this service runs on.

Providers hand out `postgres://…` or `postgresql://…` (often with `?sslmode=require`); SQLAlchemy would
take those to mean psycopg, which is not installed. Every PostgreSQL URL runs on asyncpg and every
SQLite URL on aiosqlite. Pure string work: the settings use it before any driver is imported.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")
EXPECTED = "postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite+aiosqlite:///PATH"


def async_database_url(url: str) -> str:
    """The URL with the driver this service uses; ValueError (safe to print) for anything else."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"not a database URL; expected {EXPECTED}")
    scheme = scheme.lower()
    if scheme in SQLITE_SCHEMES:
        return f"sqlite+aiosqlite://{rest}"
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"unsupported database {scheme!r}; expected {EXPECTED}")
    address, question, query = rest.partition("?")
    if question:
        # libpq's sslmode is asyncpg's ssl (same values: disable, prefer, require, verify-ca, verify-full).
        pairs = [("ssl" if key == "sslmode" else key, value) for key, value in parse_qsl(query)]
        address = f"{address}?{urlencode(pairs)}"
    return f"postgresql+asyncpg://{address}"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def postgres_address(url: str) -> str:
    """host:port of a PostgreSQL URL, as a message names it (5432 when the URL names no port)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}"
