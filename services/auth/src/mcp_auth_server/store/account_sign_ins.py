"""Upstream sign-ins for the user's own account page, which is no OAuth client's request.

Nothing is sent to a client and no client is vouched for, so there is no consent step; the
upstream `state` follows the same rules as an authorization request's (store/authorization_requests):
single-use, 10 minutes, and only in the browser that started it (the row holds the hash of
that browser's binding cookie).
"""

from __future__ import annotations

import hmac
import json

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.opaque_tokens import hash_secret, new_secret
from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.models import AccountSignIn
from mcp_auth_server.store.authorization_requests import REQUEST_TTL
from mcp_auth_server.upstreams.base import UpstreamRequest


def start_sign_in(
    session: AsyncSession, browser_binding: str, box: SecretBox, callback_url: str
) -> UpstreamRequest:
    upstream = UpstreamRequest(
        state=new_secret(), callback_url=callback_url, code_verifier=new_secret(48), nonce=new_secret()
    )
    state_hash = hash_secret(upstream.state)
    secrets_json = json.dumps({"code_verifier": upstream.code_verifier, "nonce": upstream.nonce}).encode()
    moment = now()
    session.add(
        AccountSignIn(
            state_hash=state_hash,
            browser_binding_hash=hash_secret(browser_binding),
            upstream_secrets_encrypted=box.encrypt(secrets_json, bound_to=state_hash),
            created_at=moment,
            expires_at=moment + REQUEST_TTL,
        )
    )
    return upstream


async def take_sign_in(
    session: AsyncSession, state: str, browser_binding: str | None, box: SecretBox, callback_url: str
) -> UpstreamRequest | None:
    """Consume the account sign-in an upstream `state` belongs to: once, in time, in the same browser."""
    state_hash = hash_secret(state)
    row = await session.get(AccountSignIn, state_hash)
    if (
        row is None
        or row.expires_at <= now()
        or browser_binding is None
        or not hmac.compare_digest(row.browser_binding_hash, hash_secret(browser_binding))
    ):
        return None
    # Single use even under concurrent callbacks: only one DELETE finds the row.
    deleted = await session.execute(delete(AccountSignIn).where(AccountSignIn.state_hash == state_hash))
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        return None
    stored = json.loads(box.decrypt(row.upstream_secrets_encrypted, bound_to=state_hash))
    return UpstreamRequest(
        state=state, callback_url=callback_url, code_verifier=stored["code_verifier"], nonce=stored["nonce"]
    )
