"""A private_key_jwt client's key, and the assertions (RFC 7523 §2.2) it signs, well-formed or not."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_auth_kit.rfc7638_jwk_thumbprints import public_jwk

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class ClientKey:
    kid: str = field(default_factory=lambda: secrets.token_hex(4))
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def jwk(self) -> dict[str, Any]:
        return {**public_jwk(self.private.public_key()), "kid": self.kid, "use": "sig", "alg": "ES256"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, client_id: str, audience: Any, lifetime: int = 60, **overrides: Any) -> dict[str, Any]:
        moment = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": moment,
            "exp": moment + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def assertion(self, client_id: str, audience: Any, *, kid: str | None = "", **overrides: Any) -> str:
        """Signed with ES256; `kid` "" means this key's own kid, None no kid at all."""
        headers = {"kid": self.kid if kid == "" else kid} if kid is not None else {}
        return jwt.encode(
            self.claims(client_id, audience, **overrides), self.private, "ES256", headers=headers
        )


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWS put together by hand, for algorithms PyJWT refuses to produce with these keys."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **extra}
