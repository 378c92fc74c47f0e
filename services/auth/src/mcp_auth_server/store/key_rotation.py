"""Optional automatic signing-key rotation (AUTH_KEY_ROTATION_DAYS), safe when every replica checks.

Every replica runs the check on its reload tick. Two replicas finding the newest key too old at the
same moment must not both add one: the check holds the signing keys' transaction-scoped Postgres
advisory lock, so the second waits for the first to commit, then sees the key it added and does
nothing. (SQLite is one process's database and needs no lock.)

A rotation is `add_key` with a safe activation delay: the new key is published at once and signs
only after every replica has reloaded and every resource server's cached JWKS has expired. The keys
it replaces stop signing at that moment (`retires_at`) and leave the JWKS by state once their last
token has expired (see `store/signing_keys.py`); nothing is deleted.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.clock import now
from mcp_auth_server.crypto.secret_box import SecretBox
from mcp_auth_server.db.models import SigningKey
from mcp_auth_server.store.signing_keys import JWKS_MAX_AGE, add_key, lock_signing_keys

if TYPE_CHECKING:
    from mcp_auth_server.runtime import Runtime

log = logging.getLogger(__name__)

DAY = 86_400
# The `mcp-auth keys rotate` default; automatic rotation never uses less.
MIN_ACTIVATION_DELAY = 600


def activation_delay(reload_seconds: float) -> int:
    """Long enough that every replica publishes the key and every cached JWKS expires before it signs.

    A replica learns of the key within one reload interval; a resource server then keeps the JWKS it
    fetched for up to `JWKS_MAX_AGE`. Twice the reload interval leaves room for a slow reload.
    """
    return max(MIN_ACTIVATION_DELAY, JWKS_MAX_AGE + math.ceil(2 * reload_seconds) + 60)


async def rotate_if_due(
    session: AsyncSession, box: SecretBox, algorithm: str, *, period_seconds: int, activation_delay: int
) -> SigningKey | None:
    """Add a key if the newest one is older than `period_seconds`; the new key, or None if not due."""
    await lock_signing_keys(session)  # until add_key's commit, or the one below
    newest = await session.scalar(select(func.max(SigningKey.created_at)))
    if newest is not None and now() - newest < period_seconds:
        await session.commit()
        return None
    return await add_key(session, box, algorithm, activation_delay)


async def rotate_signing_key_if_due(runtime: Runtime) -> None:
    """The reload tick's rotation check; does nothing unless AUTH_KEY_ROTATION_DAYS is set."""
    settings = runtime.settings
    if not settings.auth_key_rotation_days:
        return
    async with runtime.sessions() as session:
        key = await rotate_if_due(
            session,
            SecretBox(settings.secret_key, "signing-key"),
            settings.auth_signing_alg,
            period_seconds=settings.auth_key_rotation_days * DAY,
            activation_delay=activation_delay(settings.auth_reload_seconds),
        )
    if key is not None:
        log.info("rotated the signing key", extra={"kid": key.kid, "activates_at": key.activates_at})
