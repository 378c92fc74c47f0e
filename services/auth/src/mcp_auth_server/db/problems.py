"""Why the database cannot be used, in one line an operator can act on (never a driver traceback).

Connecting is where configuration mistakes show: the host is wrong or down, the password is refused,
the role or the database does not exist. `explain` recognises those from the driver's exception and
names AUTH_DATABASE_URL, the address and what to do; `DatabaseProblem.retryable` tells
`mcp-auth migrate --wait` which of them time may cure (a database still starting up).
"""

from __future__ import annotations

import os
import socket
import sqlite3

from mcp_auth_server.db.urls import postgres_address, redacted
from mcp_auth_server.errors import ConfigurationError

# SQLSTATEs that mean "this connection was refused for a reason the operator must fix" (PostgreSQL
# Appendix A), and the advice for each.
REFUSED = {
    "28P01": "password authentication failed for the user; check the user and password",
    "28000": "{server}; check the user name (and pg_hba.conf)",
    "3D000": "{server}; create it or fix the database name",
    "42501": "{server}; grant the role what it needs",
}
# The server is there but not accepting connections yet (starting, recovering, shutting down, full).
NOT_YET = {"57P03", "57P01", "57P02", "53300"}


class DatabaseProblem(ConfigurationError):
    """The database at AUTH_DATABASE_URL cannot be used; `retryable` when waiting may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def explain(exc: BaseException, url: str) -> DatabaseProblem | None:
    """The operator's view of a failure to connect to `url`, or None if it is not one."""
    if url.startswith("sqlite"):
        return _explain_sqlite(exc, url)
    where = postgres_address(url)
    cause = _driver_error(exc)
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in REFUSED:
        advice = REFUSED[sqlstate].format(server=_first_line(cause))
        return DatabaseProblem(
            f"AUTH_DATABASE_URL: {where} refused the connection: {advice}", retryable=False
        )
    if isinstance(sqlstate, str) and sqlstate in NOT_YET:
        return DatabaseProblem(
            f"AUTH_DATABASE_URL: {where} is not accepting connections yet ({_first_line(cause)})",
            retryable=True,
        )
    if isinstance(cause, socket.gaierror):
        host = where.rsplit(":", 1)[0]
        return DatabaseProblem(
            f"AUTH_DATABASE_URL: cannot resolve the database host {host!r} ({cause.strerror}); "
            "check the host",
            retryable=True,
        )
    if isinstance(cause, OSError | TimeoutError):
        errno = cause.errno if isinstance(cause, OSError) else None
        reason = os.strerror(errno).lower() if errno else _reason(cause)
        return DatabaseProblem(
            f"AUTH_DATABASE_URL: cannot reach the database at {where} ({reason}); check the host and "
            "port, and that PostgreSQL is running and reachable from here",
            retryable=True,
        )
    return None


def _explain_sqlite(exc: BaseException, url: str) -> DatabaseProblem | None:
    cause = _driver_error(exc)
    if isinstance(cause, sqlite3.OperationalError | OSError):
        return DatabaseProblem(
            f"AUTH_DATABASE_URL: cannot open the SQLite database {redacted(url)} ({_first_line(cause)}); "
            "check the path and that its directory is writable",
            retryable=False,
        )
    return None


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers (`orig`, then the adapter's cause)."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "orig", None) or current.__cause__
        if not isinstance(inner, BaseException):
            break
        current = inner
    return current


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    return "timed out" if isinstance(exc, TimeoutError) else _first_line(exc)
