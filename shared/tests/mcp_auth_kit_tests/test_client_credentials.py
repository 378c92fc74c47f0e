"""The kit's own client authentication: a secret as HTTP Basic, or a private key as RFC 7523 assertions."""

from __future__ import annotations

import base64
import time

import jwt
import pytest

from mcp_auth_kit import ClientCredentials, DPoPKey, PrivateKeyJWT

ISSUER = "https://auth.example.com"


def test_a_secret_is_sent_as_basic_with_both_parts_form_urlencoded() -> None:
    form, headers = ClientCredentials("tools:1", "s&cret=x y").authenticate({"token": "t"}, ISSUER)
    assert form == {"token": "t"}
    scheme, encoded = headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "tools%3A1:s%26cret%3Dx+y"


@pytest.mark.parametrize("algorithm", ["ES256", "PS256", "EdDSA"])
def test_a_key_signs_a_fresh_short_assertion_for_the_issuer(algorithm: str) -> None:
    key = PrivateKeyJWT.from_pem(DPoPKey.generate(algorithm).private_key_pem(), key_id="k1")
    credentials = ClientCredentials("tools", private_key=key)
    first, headers = credentials.authenticate({"token": "t"}, ISSUER)
    second, _ = credentials.authenticate({"token": "t"}, ISSUER)
    assert headers == {}
    assert first["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    [public] = key.public_jwks()["keys"]
    assert "d" not in public
    assert (public["kid"], public["alg"]) == ("k1", algorithm)
    claims = jwt.decode(
        first["client_assertion"], jwt.PyJWK(public).key, algorithms=[algorithm], audience=ISSUER
    )
    assert claims["iss"] == claims["sub"] == "tools"
    assert 0 < claims["exp"] - time.time() <= 60
    assert jwt.get_unverified_header(first["client_assertion"])["kid"] == "k1"
    again = jwt.decode(second["client_assertion"], options={"verify_signature": False})
    assert again["jti"] != claims["jti"]


def test_the_default_kid_is_the_keys_thumbprint() -> None:
    key = PrivateKeyJWT.from_pem(DPoPKey.generate("ES256").private_key_pem())
    dpop = DPoPKey.from_pem(DPoPKey.generate("ES256").private_key_pem())
    assert len(key.key_id) == len(dpop.jkt) == 43


@pytest.mark.parametrize("kwargs", [{}, {"secret": "s", "private_key": "key"}])
def test_a_client_has_a_secret_or_a_key(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="either a client_secret or a private_key"):
        ClientCredentials("tools", **kwargs)  # type: ignore[arg-type]


def test_a_public_key_is_not_a_private_key() -> None:
    with pytest.raises(ValueError, match=r"(?i)deserialize|private"):
        PrivateKeyJWT.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
