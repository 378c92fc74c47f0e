"""Audit events: written in the same transaction as the change they describe, and logged.

The log line (logger `mcp_auth_server.audit`, level WARNING for security events) is what an
operator alerts on; the row is what they investigate later.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuditEvent

log = logging.getLogger("mcp_auth_server.audit")
# Every event the service records: a new one is added here (mypy holds `record` to this list), and the
# operating guide's list of events is checked against it.
AuditEventName = Literal[
    "access_token_revoked",
    "authorization_code_issued",
    "client_registered",
    "code_replay",
    "consent_denied",
    "grant_revoked",
    "refresh_token_key_mismatch",
    "refresh_token_reuse",
    "sign_in",
    "sign_in_refused",
    "token_exchange",
    "upstream_access_lost",
    "user_disabled",
    "user_enabled",
]
EVENT_NAMES: tuple[str, ...] = get_args(AuditEventName)
# Events that mean someone may be attacking or a user lost access: alert on these.
SECURITY_EVENTS = {
    "refresh_token_reuse",
    "refresh_token_key_mismatch",  # a refresh token without a proof by its key (or unbound, with one)
    "code_replay",
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
    AUDIT_EVENTS.labels(event).inc()
    level = logging.WARNING if event in SECURITY_EVENTS else logging.INFO
    log.log(
        level,
        "audit %s",
        event,
        extra={"audit_event": event, "user_id": user_id, "client_id": client_id, "details": details},
    )
