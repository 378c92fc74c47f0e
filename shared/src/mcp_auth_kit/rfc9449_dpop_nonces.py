"""Server-provided DPoP nonces (RFC 9449 §8 at the authorization server, §9 at a resource server).

Stateless and rotating, so every replica issues and accepts the same nonces without sharing anything but
a secret: a nonce is the number of the current time window with an HMAC of it, under the server's secret
and a context naming the server (its token endpoint or resource URL), so a nonce from one server is
worthless at another (§9). A nonce is accepted during its own window and the ones either side of it (a
replica whose clock is a little ahead or behind still agrees), so it lives two to three windows.

§8 requires nonces to be unpredictable: without the secret, the MAC of a future window cannot be
computed. A nonce may be used by many proofs (§11.1): replay is caught by the proof's `jti`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

DEFAULT_WINDOW_SECONDS = 30
_MAC_BYTES = 16  # 128 bits: as unguessable as a nonce needs to be


class DPoPNonces:
    """Issues and checks the nonces of one server (one context)."""

    def __init__(
        self,
        secret: bytes,
        *,
        context: str,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the DPoP nonce secret must be at least 16 bytes")
        if window_seconds < 1:
            raise ValueError("window_seconds must be at least 1")
        self._key = hmac.new(secret, b"rfc9449-dpop-nonce\x00" + context.encode(), hashlib.sha256).digest()
        self._window_seconds = window_seconds
        self._now = now

    def current(self) -> str:
        """The nonce to hand out now (the `DPoP-Nonce` header value: RFC 9449 §8.1 NQCHARs only)."""
        return self._nonce(self._window())

    def is_valid(self, nonce: str) -> bool:
        window, _, _ = nonce.partition(".")
        if not (window.isascii() and window.isdigit()) or len(window) > 12:
            return False
        if abs(int(window) - self._window()) > 1:
            return False
        return hmac.compare_digest(nonce.encode(), self._nonce(int(window)).encode())

    def _window(self) -> int:
        return int(self._now() // self._window_seconds)

    def _nonce(self, window: int) -> str:
        mac = hmac.new(self._key, str(window).encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return f"{window}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"
