"""Hand-made DPoP proofs (RFC 9449 §4.2), right and wrong: every header and claim can be changed or dropped.

Written from the RFC independently of the product's code, so the tests do not share its mistakes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

DROP = object()  # an override that removes the header parameter or claim


def public_jwk(public_key: Any) -> dict[str, Any]:
    """The public key as a JWK (PyJWT writes it; `key_ops` is not part of a DPoP proof's key)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, rsa.RSAPublicKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(public_key, as_dict=True)
    return {name: value for name, value in jwk.items() if name != "key_ops"}


def access_token_hash(access_token: str) -> str:
    """§4.2 `ath`: base64url(SHA-256(the token's ASCII))."""
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest())


def private_key_for(alg: str) -> Any:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        return ec.generate_private_key(curve)
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def craft(
    key: Any,
    alg: str = "ES256",
    *,
    method: str = "POST",
    url: str = "https://as.example.com/token",
    access_token: str | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    signing_key: Any = None,
) -> str:
    """A proof signed by `signing_key` (default: `key`) whose header carries `key`'s public JWK."""
    fields: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    if access_token is not None:
        fields["ath"] = access_token_hash(access_token)
    fields.update(claims or {})
    headers: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(key.public_key())}
    headers.update(header or {})
    return sign_raw(
        {name: value for name, value in headers.items() if value is not DROP},
        {name: value for name, value in fields.items() if value is not DROP},
        signing_key if signing_key is not None else key,
        alg,
    )


def sign_raw(header: dict[str, Any], claims: dict[str, Any], key: Any, alg: str) -> str:
    """A compact JWS with exactly this header (PyJWT's `encode` would add its own `typ` and `alg`)."""
    segments = [_b64(json.dumps(part).encode()) for part in (header, claims)]
    signing_input = ".".join(segments).encode()
    signature = jwt.get_algorithm_by_name(alg).sign(signing_input, key)
    return ".".join([*segments, _b64(signature)])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
