"""Client records kept for a few seconds (AUTH_CLIENT_CACHE_SECONDS), so a token request need not read one.

A client_credentials token otherwise costs one database round trip: reading the client. Each worker keeps
the records it read for at most `seconds`, so a change another process makes (the CLI, another replica)
is seen within that bound. A change made in this process through SQLAlchemy is seen at once: every
UPDATE or DELETE of the `clients` table, and every flush of a changed or deleted `Client`, forgets the
records in every cache of the process. Unknown client ids are never remembered, so a client registered
anywhere is found on its first request.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import Delete, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from mcp_auth_server import clock
from mcp_auth_server.db.models import Client

MAX_CLIENTS = 10_000
# Marks an UPDATE that only records a client's last use (store/clients.py `touch`): it changes nothing a
# request decides on, so it leaves the caches alone (else a busy fleet of clients would empty them).
LAST_USE_ONLY = "mcp_auth_server.last_use_only"

_caches: weakref.WeakSet[ClientCache] = weakref.WeakSet()


class ClientCache:
    """Client records by id, each for at most `seconds` (by the service's clock); 0 keeps nothing."""

    def __init__(self, seconds: float, now: Callable[[], float] = clock.now) -> None:
        self.seconds = seconds
        self._now = now
        self._records: OrderedDict[str, tuple[float, Client]] = OrderedDict()
        _caches.add(self)

    def get(self, client_id: str) -> Client | None:
        entry = self._records.get(client_id)
        if entry is None:
            return None
        if self._now() >= entry[0]:
            del self._records[client_id]
            return None
        return entry[1]

    def put(self, client: Client) -> None:
        if self.seconds <= 0:
            return
        self._records[client.client_id] = (self._now() + self.seconds, client)
        self._records.move_to_end(client.client_id)
        if len(self._records) > MAX_CLIENTS:
            self._records.popitem(last=False)

    def forget(self, client_id: str | None = None) -> None:
        """Forget one client, or (None) every client."""
        if client_id is None:
            self._records.clear()
        else:
            self._records.pop(client_id, None)


def _forget_everywhere(client_id: str | None) -> None:
    for cache in list(_caches):
        cache.forget(client_id)


@event.listens_for(Session, "do_orm_execute")
def _statement_changed_clients(state: ORMExecuteState) -> None:
    statement = state.statement
    if not isinstance(statement, Update | Delete) or state.execution_options.get(LAST_USE_ONLY):
        return
    if getattr(statement.table, "name", None) == Client.__tablename__:
        _forget_everywhere(None)  # a bulk statement does not say which rows; such changes are rare


@event.listens_for(Session, "after_flush")
def _flush_changed_clients(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, Client):
            _forget_everywhere(instance.client_id)
