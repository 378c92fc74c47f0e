"""/authorize requests in flight, from the consent page to the upstream callback.

The upstream `state` is created only after the user approves (the MCP confused-deputy rule),
is single-use, expires with the request (10 minutes), and only works in the browser that
started the request: the row holds the hash of that browser's binding cookie.
"""

from __future__ import annotations

import hmac
import json

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.models import AuthorizationRequest
from mcp_auth_server.upstreams.base import UpstreamRequest

REQUEST_TTL = 600


def create_request(
    session: AsyncSession,
    *,
    client_id: str,
    redirect_uri: str,
    client_state: str | None,
    code_challenge: str,
    resource: str,
    scopes: list[str],
    browser_binding: str,
    dpop_jkt: str | None = None,
) -> str:
    request_id = new_secret()
    moment = now()
    session.add(
        AuthorizationRequest(
            id_hash=hash_secret(request_id),
            client_id=client_id,
            redirect_uri=redirect_uri,
            client_state=client_state,
            code_challenge=code_challenge,
            resource=resource,
            scopes=scopes,
            browser_binding_hash=hash_secret(browser_binding),
            created_at=moment,
            expires_at=moment + REQUEST_TTL,
            dpop_jkt=dpop_jkt,
        )
    )
    return request_id


def _bound_to_browser(row: AuthorizationRequest, browser_binding: str | None) -> bool:
    return browser_binding is not None and hmac.compare_digest(
        row.browser_binding_hash, hash_secret(browser_binding)
    )


async def pending_request(
    session: AsyncSession, request_id: str, browser_binding: str | None
) -> AuthorizationRequest | None:
    """The request awaiting consent, if it is live and this is the browser that started it."""
    row = await session.get(AuthorizationRequest, hash_secret(request_id))
    if row is None or row.expires_at <= now() or row.upstream_state_hash is not None:
        return None
    return row if _bound_to_browser(row, browser_binding) else None


async def start_upstream(
    session: AsyncSession, row: AuthorizationRequest, box: SecretBox, callback_url: str
) -> UpstreamRequest | None:
    """After approval: mint the upstream state and the per-sign-in secrets, stored for the callback.

    None if a concurrent submission of the same consent form got there first (one state per request).
    """
    upstream = UpstreamRequest(
        state=new_secret(), callback_url=callback_url, code_verifier=new_secret(48), nonce=new_secret()
    )
    secrets_json = json.dumps({"code_verifier": upstream.code_verifier, "nonce": upstream.nonce}).encode()
    started = await session.execute(
        update(AuthorizationRequest)
        .where(
            AuthorizationRequest.id_hash == row.id_hash, AuthorizationRequest.upstream_state_hash.is_(None)
        )
        .values(
            upstream_state_hash=hash_secret(upstream.state),
            upstream_secrets_encrypted=box.encrypt(secrets_json, bound_to=row.id_hash),
        )
    )
    return upstream if bool(started.rowcount == 1) else None  # type: ignore[attr-defined]


async def take_by_state(
    session: AsyncSession, state: str, browser_binding: str | None, box: SecretBox, callback_url: str
) -> tuple[AuthorizationRequest, UpstreamRequest] | None:
    """Consume the request an upstream `state` belongs to: once, in time, in the same browser."""
    state_hash = hash_secret(state)
    row = await session.scalar(
        select(AuthorizationRequest).where(AuthorizationRequest.upstream_state_hash == state_hash)
    )
    if row is None or row.expires_at <= now() or not _bound_to_browser(row, browser_binding):
        return None
    # Single use even under concurrent callbacks: only one DELETE finds the row.
    deleted = await session.execute(
        delete(AuthorizationRequest).where(AuthorizationRequest.id_hash == row.id_hash)
    )
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        return None
    assert row.upstream_secrets_encrypted is not None
    stored = json.loads(box.decrypt(row.upstream_secrets_encrypted, bound_to=row.id_hash))
    upstream = UpstreamRequest(
        state=state, callback_url=callback_url, code_verifier=stored["code_verifier"], nonce=stored["nonce"]
    )
    return row, upstream


async def discard(session: AsyncSession, row: AuthorizationRequest) -> bool:
    """Answer the request once: False if a concurrent submission already took it (the row lock decides)."""
    deleted = await session.execute(
        delete(AuthorizationRequest).where(
            AuthorizationRequest.id_hash == row.id_hash, AuthorizationRequest.upstream_state_hash.is_(None)
        )
    )
    return bool(deleted.rowcount == 1)  # type: ignore[attr-defined]
