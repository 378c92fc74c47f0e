"""AES-256-GCM encryption at rest under keys derived from AUTH_SECRET_KEY (HKDF-SHA256).

Each purpose ("upstream-token", "signing-key", ...) gets its own derived key, and callers bind
a ciphertext to the row it belongs to through the associated data, so a database writer cannot
swap one user's encrypted upstream token into another user's row.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext was not produced under this secret for this purpose and row."""


def derive_key(root_secret: bytes, purpose: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        root_secret
    )


class SecretBox:
    def __init__(self, root_secret: bytes, purpose: str) -> None:
        self._aead = AESGCM(derive_key(root_secret, f"mcp-auth/{purpose}"))

    def encrypt(self, plaintext: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def decrypt(self, blob: bytes, bound_to: str) -> bytes:
        if blob[:1] != VERSION:
            raise DecryptionError("unknown ciphertext version")
        nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, bound_to.encode())
        except InvalidTag:
            raise DecryptionError("ciphertext does not authenticate") from None
