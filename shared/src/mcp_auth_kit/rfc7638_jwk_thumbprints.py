"""RFC 7638 JWK thumbprints: the SHA-256 name of a public key that DPoP binds tokens and codes to.

The thumbprint is computed from the key object PyJWT parsed, re-exported by PyJWT's own `to_jwk`, not
from the JSON the client sent: two spellings of one key (an RSA modulus with a leading zero byte, extra
members) then have one thumbprint, and a key PyJWT would not parse has none.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PublicKey = EllipticCurvePublicKey | RSAPublicKey | Ed25519PublicKey | Ed448PublicKey

# RFC 7638 §3.2 (EC, RSA) and RFC 8037 §2 (OKP): the required members of each key type, and only those.
REQUIRED_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public JWK of a `cryptography` public key (EC, RSA or OKP), as PyJWT writes it."""
    jwk: dict[str, Any]
    if isinstance(key, EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, Ed25519PublicKey | Ed448PublicKey):
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    else:
        raise TypeError(f"not a public key of a JWS signature algorithm: {type(key).__name__}")
    return {name: value for name, value in jwk.items() if name != "key_ops"}


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638 §3: base64url(SHA-256(the required members, sorted, without whitespace)), unpadded."""
    jwk = public_jwk(key)
    members = {name: jwk[name] for name in REQUIRED_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
