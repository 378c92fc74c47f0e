"""RFC 7638 thumbprints against the RFCs' own examples, and one name per key however it is spelled."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import base64url_decode, base64url_encode

from mcp_auth_kit.rfc7638_jwk_thumbprints import jwk_thumbprint, public_jwk

RFC7638_RSA = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8"
    "KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
    "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_the_rfc7638_rsa_example() -> None:
    key = jwt.PyJWK(RFC7638_RSA).key
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_rfc9449_ec_example() -> None:
    jwk = {
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    }
    assert jwk_thumbprint(jwt.PyJWK(jwk).key) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_the_rfc8037_ed25519_example() -> None:
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwt.PyJWK(jwk).key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_members_beyond_the_required_ones_do_not_change_the_thumbprint() -> None:
    # A leading zero byte on the modulus and extra members: another spelling of the same key.
    modulus = b"\x00" + base64url_decode(RFC7638_RSA["n"])
    padded = {**RFC7638_RSA, "n": base64url_encode(modulus).decode(), "use": "sig", "kid": "other"}
    assert jwk_thumbprint(jwt.PyJWK(padded).key) == jwk_thumbprint(jwt.PyJWK(RFC7638_RSA).key)


def test_the_public_jwk_has_no_private_members() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    assert set(public_jwk(private_key.public_key())) == {"kty", "crv", "x", "y"}
    with pytest.raises(TypeError):
        public_jwk(private_key)  # type: ignore[arg-type]
