"""Audit events: written in the same transaction as the change they describe, and logged.

The log line (logger `mcp_auth_server.audit`, level WARNING for security events) is what an
operator alerts on; the row is what they investigate later.

`record` adds the row to the session's unit of work, flushed with the request's other ORM changes;
`record_now` inserts it at once with a plain statement on the session's connection (db/statements.py),
as a request's last write: for hot paths that otherwise write nothing through the ORM, where the unit of
work, its flush and the commit were most of the request (docs/benchmarks.md, the ID-JAG grant).
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuditEvent
from mcp_auth_server.db.statements import Sql, Statement, insert_into

log = logging.getLogger("mcp_auth_server.audit")
# Every event the service records: a new one is added here (mypy holds `record` to this list), and the
# operating guide's list of events is checked against it.
AuditEventName = Literal[
    "access_token_revoked",
    "assertion_replay",
    "authorization_code_issued",
    "client_registered",
    "code_replay",
    "consent_denied",
    "enterprise_user_linked",
    "grant_revoked",
    "identity_assertion_grant",
    "refresh_token_key_mismatch",
    "refresh_token_reuse",
    "sign_in",
    "sign_in_refused",
    "token_exchange",
    "upstream_access_lost",
    "user_disabled",
    "user_enabled",
    "workload_identity_grant",
]
EVENT_NAMES: tuple[str, ...] = get_args(AuditEventName)
# Events that mean someone may be attacking or a user lost access: alert on these.
SECURITY_EVENTS = {
    "refresh_token_reuse",
    "refresh_token_key_mismatch",  # a refresh token without a proof by its key (or unbound, with one)
    "code_replay",
    "assertion_replay",  # an ID-JAG or workload token presented twice: copied, or a client bug
    "sign_in_refused",
    "upstream_access_lost",
    "user_disabled",
}
# Alerts count these (deploy/monitoring/alerts.yaml); the rows and log lines say who and what.
AUDIT_EVENTS = Counter("mcp_auth_audit_events_total", "Audit events recorded, by event", ["event"])


def key_binding(dpop_jkt: Any) -> dict[str, Any]:
    """Details saying a grant or token is bound to a DPoP key (RFC 9449): the key's thumbprint, if so."""
    return {"dpop_jkt": dpop_jkt} if isinstance(dpop_jkt, str) else {}


def record(
    session: AsyncSession,
    event: AuditEventName,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEvent(at=now(), event=event, user_id=user_id, client_id=client_id, ip=ip, details=details)
    )
    _announce(event, user_id, client_id, details)


INSERT_EVENT = Statement(
    insert_into(
        AuditEvent, **{name: f":{name}" for name in ("at", "event", "user_id", "client_id", "ip", "details")}
    ),
    outside_transaction=True,  # the request's only write: see record_now
)


async def record_now(
    session: AsyncSession,
    event: AuditEventName,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    """`record`, the row inserted now rather than at the session's next flush: only as the request's last
    write. It joins the request's transaction when one has begun (the request changed something, which
    the row then commits or rolls back with); a request that changed nothing else has none, and the row
    is a statement of its own, committed as it runs: what committing it at the edge would do, without
    BEGIN, COMMIT and the session's commit (endpoints/dependencies.py)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # changes still pending in the session begin the transaction the row joins
    await (await Sql.of(session)).execute(
        INSERT_EVENT, at=now(), event=event, user_id=user_id, client_id=client_id, ip=ip, details=details
    )
    _announce(event, user_id, client_id, details)


def _announce(
    event: AuditEventName, user_id: str | None, client_id: str | None, details: dict[str, Any]
) -> None:
    AUDIT_EVENTS.labels(event).inc()
    level = logging.WARNING if event in SECURITY_EVENTS else logging.INFO
    log.log(
        level,
        "audit %s",
        event,
        extra={"audit_event": event, "user_id": user_id, "client_id": client_id, "details": details},
    )
