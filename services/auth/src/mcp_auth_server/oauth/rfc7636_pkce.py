"""PKCE (RFC 7636), S256 only: OAuth 2.1 §4.1.1 and the MCP spec forbid `plain`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# §4.1: 43-128 characters from the unreserved set. An S256 challenge is exactly 43 of them.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def challenge_problem(challenge: str | None, method: str | None) -> str | None:
    """Why an /authorize request's PKCE parameters are unacceptable, or None."""
    if not challenge:
        return "code_challenge is required (PKCE)"
    if method != "S256":
        return "code_challenge_method must be S256"
    if not S256_CHALLENGE.match(challenge):
        return "code_challenge must be a base64url SHA-256 digest (43 characters)"
    return None


def verifier_matches(verifier: str, challenge: str) -> bool:
    # §4.6, compared in constant time.
    return bool(VERIFIER.match(verifier)) and hmac.compare_digest(s256_challenge(verifier), challenge)
