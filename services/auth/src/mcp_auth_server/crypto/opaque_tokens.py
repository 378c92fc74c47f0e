"""Opaque secrets we hand out (codes, refresh tokens, client secrets, session ids) and their hashes.

They carry 256 random bits, so a plain SHA-256 is enough to make a stolen database useless:
there is nothing to brute-force. Lookups go by hash; explicit comparisons are constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secret_matches(value: str, expected_hash: str | None) -> bool:
    if expected_hash is None:
        return False
    return hmac.compare_digest(hash_secret(value), expected_hash)
