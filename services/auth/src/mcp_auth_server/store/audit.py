"""Audit events: written in the same transaction as the change they describe, and logged.

The log line (logger `mcp_auth_server.audit`, level WARNING for security events) is what an
operator alerts on; the row is what they investigate later.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.db.models import AuditEvent

log = logging.getLogger("mcp_auth_server.audit")
# Events that mean someone may be attacking or a user lost access: alert on these.
SECURITY_EVENTS = {
    "refresh_token_reuse",
    "code_replay",
    "sign_in_refused",
    "upstream_access_lost",
    "user_disabled",
}


def record(
    session: AsyncSession,
    event: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEvent(at=now(), event=event, user_id=user_id, client_id=client_id, ip=ip, details=details)
    )
    level = logging.WARNING if event in SECURITY_EVENTS else logging.INFO
    log.log(
        level,
        "audit %s",
        event,
        extra={"audit_event": event, "user_id": user_id, "client_id": client_id, "details": details},
    )
