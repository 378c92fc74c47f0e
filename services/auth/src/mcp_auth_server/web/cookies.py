"""Cookies: `__Host-` prefixed, Secure, HttpOnly, SameSite=Lax on an https issuer.

On a loopback http issuer (local runs) browsers refuse both `__Host-` and Secure over http, so
plain names are used there. SameSite=Lax keeps the cookies off cross-site POSTs (consent CSRF)
while still sending them on the top-level GET that brings the browser back from upstream.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mcp_auth_server.crypto.opaque_tokens import new_secret
from mcp_auth_server.crypto.secret_box import derive_key

BROWSER = "mcp_auth_browser"  # binds in-flight requests and upstream state to one browser
SESSION = "mcp_auth_session"  # the signed-in session


class CookiePolicy:
    def __init__(self, issuer: str, root_secret: bytes) -> None:
        self.secure = urlsplit(issuer).scheme == "https"
        self._prefix = "__Host-" if self.secure else ""
        self._csrf_key = derive_key(root_secret, "mcp-auth/csrf")

    def name(self, base: str) -> str:
        return f"{self._prefix}{base}"

    def read(self, request: Request, base: str) -> str | None:
        return request.cookies.get(self.name(base))

    def write(self, response: Response, base: str, value: str, max_age: int) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, base: str) -> None:
        response.delete_cookie(self.name(base), path="/", secure=self.secure, httponly=True, samesite="lax")

    def browser_binding(self, request: Request) -> tuple[str, bool]:
        """This browser's binding value, and whether it is new (and so must be set)."""
        existing = self.read(request, BROWSER)
        return (existing, False) if existing else (new_secret(), True)

    def csrf_token(self, browser_binding: str, purpose: str) -> str:
        """A form token tied to the browser cookie: a cross-site page can neither read nor forge it."""
        message = f"{browser_binding}|{purpose}".encode()
        return hmac.new(self._csrf_key, message, hashlib.sha256).hexdigest()

    def csrf_valid(self, browser_binding: str | None, purpose: str, token: str) -> bool:
        if not browser_binding or not token:
            return False
        return hmac.compare_digest(self.csrf_token(browser_binding, purpose), token)
