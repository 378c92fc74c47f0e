"""The signing-key ring: which keys are published in the JWKS and which one signs.

A key's life (all in the database, so every replica agrees):
  pending   published, not yet signing (resource servers' JWKS caches pick it up meanwhile)
  active    signing; the newest active key signs
  retiring  stopped signing at `retires_at`, still published until its last token expires
  retired   gone from the JWKS
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server import clock
from mcp_auth_server.crypto.secret_box import DecryptionError, SecretBox
from mcp_auth_server.crypto.signing_keys import PrivateKey, generate_key, open_private_key, seal_private_key
from mcp_auth_server.db.models import SigningKey
from mcp_auth_server.errors import ConfigurationError

# How long resource servers may cache the JWKS (its Cache-Control max-age); a rotated key waits longer
# than this before it signs (store/key_rotation.py).
JWKS_MAX_AGE = 300
# Any constant unique among the service's advisory locks (db/migrate.py holds another).
SIGNING_KEYS_LOCK_ID = 0x6D63_706B_6579_726F


def key_state(key: SigningKey, now: int, token_ttl: int) -> str:
    if now < key.activates_at:
        return "pending"
    if key.retires_at is None or now < key.retires_at:
        return "active"
    if now < key.retires_at + token_ttl:
        return "retiring"
    return "retired"


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    private_key: PrivateKey
    activates_at: int


class KeysUnreadable(ConfigurationError):
    """The stored private keys do not decrypt: AUTH_SECRET_KEY is not the one they were sealed with."""


class KeyRing:
    """The published keys and the current signer, reloaded from the database periodically."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, token_ttl: int) -> None:
        self._sessions = sessions
        self._box = box
        self._token_ttl = token_ttl
        self._signers: list[LoadedKey] = []
        self._opened: dict[str, PrivateKey] = {}
        self.jwks: dict[str, Any] = {"keys": []}
        self.public_keys: dict[str, jwt.PyJWK] = {}
        self.loaded = False

    async def load(self) -> None:
        now = clock.now()
        async with self._sessions() as session:
            keys = (await session.scalars(select(SigningKey))).all()
        published, signers = [], []
        for key in sorted(keys, key=lambda k: k.activates_at):
            state = key_state(key, now, self._token_ttl)
            if state == "retired":
                continue
            published.append(key.public_jwk)
            if key.retires_at is None or now < key.retires_at:
                if key.kid not in self._opened:
                    try:
                        self._opened[key.kid] = open_private_key(
                            self._box, key.private_key_encrypted, key.kid
                        )
                    except DecryptionError:
                        raise KeysUnreadable(
                            f"AUTH_SECRET_KEY does not decrypt signing key {key.kid}: it must stay the same "
                            "secret the keys were created with"
                        ) from None
                signers.append(LoadedKey(key.kid, key.algorithm, self._opened[key.kid], key.activates_at))
        self.jwks = {"keys": published}
        self.public_keys = {jwk["kid"]: jwt.PyJWK(jwk) for jwk in published}
        self._signers = signers
        self.loaded = True

    def signer(self) -> LoadedKey:
        """The newest key whose activation time has come."""
        now = clock.now()
        active = [key for key in self._signers if key.activates_at <= now]
        if not active:
            raise RuntimeError("no active signing key: run `mcp-auth keys rotate`")
        return active[-1]


async def lock_signing_keys(session: AsyncSession) -> None:
    """Make key changes take turns across replicas until this transaction ends (Postgres only).

    Without it, replicas starting together on an empty database each create a "first" key, and a
    CLI rotation racing an automatic one adds two keys.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(SIGNING_KEYS_LOCK_ID)))


async def ensure_signing_key(session: AsyncSession, box: SecretBox, algorithm: str) -> None:
    """On first start there is no key: create one that signs at once."""
    await lock_signing_keys(session)
    if (await session.scalars(select(SigningKey.kid).limit(1))).first() is None:
        await add_key(session, box, algorithm, activation_delay=0)
    else:
        await session.commit()  # ends the transaction, releasing the lock


async def add_key(session: AsyncSession, box: SecretBox, algorithm: str, activation_delay: int) -> SigningKey:
    """Publish a new key now; it signs after `activation_delay`, when the keys it replaces stop."""
    await lock_signing_keys(session)
    now = clock.now()
    generated = generate_key(algorithm)
    key = SigningKey(
        kid=generated.kid,
        algorithm=algorithm,
        private_key_encrypted=seal_private_key(box, generated.private_key, generated.kid),
        public_jwk=generated.public_jwk,
        created_at=now,
        activates_at=now + activation_delay,
    )
    for previous in (await session.scalars(select(SigningKey).where(SigningKey.retires_at.is_(None)))).all():
        previous.retires_at = key.activates_at
    session.add(key)
    await session.commit()
    return key
