"""How an MCP server authenticates as its own client at the auth service (token exchange, introspection).

Either a secret, sent as HTTP Basic (RFC 6749 §2.3.1: id and secret form-urlencoded, then joined), or a
private key, sent as a signed client assertion (`private_key_jwt`, RFC 7523 §2.2): nothing secret crosses
the wire and the auth service keeps only the public key (`mcp-auth clients add --resource-server URL
--jwks @jwks.json`, where `jwks.json` is `PrivateKeyJWT.public_jwks()`).

    key = PrivateKeyJWT.from_pem_file("/run/secrets/mcp-client-key.pem")
    UpstreamTokenClient(issuer=..., client_id="tools", private_key=key)
    protect(..., introspection=Introspection("tools", private_key=key))

Each assertion is new: `iss` = `sub` = the client id, `aud` = the auth service's issuer identifier (the one
audience RFC 7523bis has clients use), a random `jti`, valid for a minute.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import jwt
from cryptography.hazmat.primitives import serialization

from mcp_auth_kit.dpop_client import PrivateKey, natural_algorithm
from mcp_auth_kit.rfc7638_jwk_thumbprints import jwk_thumbprint, public_jwk

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # seconds; the auth service refuses assertions valid for more than 5 minutes


class PrivateKeyJWT:
    """A client's signing key: makes RFC 7523 §2.2 client assertions. Keep the private key private."""

    def __init__(
        self, private_key: PrivateKey, *, key_id: str | None = None, algorithm: str | None = None
    ) -> None:
        self._private_key = private_key
        self.algorithm = algorithm or natural_algorithm(private_key)
        # The kid names the key among those the client registered; by default its RFC 7638 thumbprint.
        self.key_id = key_id or jwk_thumbprint(private_key.public_key())

    @classmethod
    def from_pem(
        cls,
        pem: bytes,
        *,
        password: bytes | None = None,
        key_id: str | None = None,
        algorithm: str | None = None,
    ) -> PrivateKeyJWT:
        """An EC, RSA or Ed25519 private key in PEM; `algorithm` defaults to the key's own (RSA: PS256)."""
        private_key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(private_key, PrivateKey):
            raise ValueError("not an EC, RSA or EdDSA private key")
        return cls(private_key, key_id=key_id, algorithm=algorithm)

    @classmethod
    def from_pem_file(cls, path: str | Path, *, key_id: str | None = None) -> PrivateKeyJWT:
        return cls.from_pem(Path(path).read_bytes(), key_id=key_id)

    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set to register for this client (it holds the public key only)."""
        jwk = {**public_jwk(self._private_key.public_key()), "kid": self.key_id}
        return {"keys": [{**jwk, "use": "sig", "alg": self.algorithm}]}

    def assertion(self, client_id: str, audience: str) -> str:
        """A new client assertion (RFC 7523 §3) for one request to the authorization server `audience`."""
        moment = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": moment,
            "exp": moment + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(16),
        }
        headers = {"kid": self.key_id}
        return jwt.encode(claims, self._private_key, algorithm=self.algorithm, headers=headers)


@dataclass(frozen=True)
class ClientCredentials:
    """One client's way of authenticating: `secret` or `private_key`, exactly one."""

    client_id: str
    secret: str | None = field(default=None, repr=False)
    private_key: PrivateKeyJWT | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.secret is None) == (self.private_key is None):
            raise ValueError("give the client either a client_secret or a private_key, not both or neither")

    def authenticate(self, form: dict[str, str], issuer: str) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of a request to the auth service at `issuer`, authenticated as this client."""
        if self.private_key is not None:
            assertion = self.private_key.assertion(self.client_id, issuer)
            return {**form, "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}, {}
        assert self.secret is not None
        credentials = f"{quote_plus(self.client_id)}:{quote_plus(self.secret)}".encode()
        return form, {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}
