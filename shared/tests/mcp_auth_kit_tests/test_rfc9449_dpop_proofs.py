"""RFC 9449 §4.3, one attack or rule per test: the proof checks shared by the auth service and the kit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_auth_kit.dpop_client import DPoPKey
from mcp_auth_kit.replay_cache import MemoryReplayCache
from mcp_auth_kit.rfc7638_jwk_thumbprints import jwk_thumbprint, public_jwk
from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces
from mcp_auth_kit.rfc9449_dpop_proofs import (
    DPoPProofVerifier,
    InvalidDPoPProof,
    UseDPoPNonce,
    access_token_hash,
    normalized_htu,
    single_proof,
)
from mcp_testing.dpop_proofs import DROP, craft, private_key_for, sign_raw

URL = "https://as.example.com/token"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


def verifier(**options: Any) -> DPoPProofVerifier:
    return DPoPProofVerifier(replay=MemoryReplayCache(), replay_namespace="test", **options)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def refused(proof: str, message: str, **request: Any) -> None:
    arguments: dict[str, Any] = {"method": "POST", "url": URL, **request}
    with pytest.raises(InvalidDPoPProof, match=message):
        verifier().check(proof, **arguments)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "PS256", "RS256", "EdDSA"])
def test_a_proof_by_each_default_algorithm_is_accepted_and_names_its_key(alg: str) -> None:
    private_key = private_key_for(alg)
    checked = verifier().check(craft(private_key, alg), method="POST", url=URL)
    assert checked.jkt == jwk_thumbprint(private_key.public_key())
    assert checked.expires_at > time.time() + 59


def test_the_client_keys_proofs_are_accepted() -> None:
    for alg in ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"):
        key = DPoPKey.generate(alg)
        checked = verifier(algorithms=[alg]).check(key.proof("POST", URL), method="POST", url=URL)
        assert checked.jkt == key.jkt


def test_two_dpop_headers_are_refused() -> None:
    with pytest.raises(InvalidDPoPProof, match="one DPoP header"):
        single_proof(["a.b.c", "a.b.c"])
    assert single_proof([]) is None


@pytest.mark.parametrize("value", ["", "not a jwt", "a.b", "a.b.c.d", "a.b.", "x" * 9000, "a b.c.d"])
def test_a_malformed_proof_is_refused(value: str) -> None:
    refused(value, "token68|well-formed")


def test_a_proof_without_typ_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, header={"typ": DROP}), "typ")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", "jwt+dpop"])
def test_a_proof_with_another_typ_is_refused(key: ec.EllipticCurvePrivateKey, typ: str) -> None:
    refused(craft(key, header={"typ": typ}), "typ")


def test_typ_is_a_media_type_compared_without_case_or_application_prefix(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    for typ in ("DPoP+JWT", "application/dpop+jwt"):
        verifier().check(craft(key, header={"typ": typ}), method="POST", url=URL)


def test_an_unsigned_proof_alg_none_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(key.public_key())}
    claims = {"jti": "j", "htm": "POST", "htu": URL, "iat": int(time.time())}
    unsigned = sign_raw(header, claims, None, "none")
    refused(unsigned, "well-formed")  # no signature segment at all
    refused(unsigned + "AAAA", "alg")


def test_a_proof_macd_with_the_public_key_as_hmac_secret_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    # The classic confusion: the attacker signs with HS256 keyed by the public key's bytes.
    secret = str(public_jwk(key.public_key())).encode()
    refused(craft(key, "HS256", signing_key=secret), "alg")


def test_an_algorithm_outside_the_allow_list_is_refused() -> None:
    private_key = private_key_for("ES512")
    with pytest.raises(InvalidDPoPProof, match="alg"):
        verifier().check(craft(private_key, "ES512"), method="POST", url=URL)  # not a default


def test_verifiers_refuse_symmetric_algorithms_in_their_configuration() -> None:
    with pytest.raises(ValueError, match="subset"):
        verifier(algorithms=["HS256"])
    with pytest.raises(ValueError, match="subset"):
        verifier(algorithms=[])


def test_a_proof_whose_alg_does_not_fit_its_jwk_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    # Header says RS256 but the JWK is an EC key: the algorithm cannot take it.
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(craft(key, "RS256", signing_key=rsa_key), "public key for this alg")


def test_a_p384_key_under_es256_is_refused() -> None:
    p384 = private_key_for("ES384")
    refused(craft(p384, "ES384", header={"alg": "ES256"}), "public key for this alg")


def test_a_proof_without_jwk_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, header={"jwk": DROP}), "jwk is missing")
    refused(craft(key, header={"jwk": "not an object"}), "jwk is missing")


def test_a_proof_whose_jwk_carries_the_private_key_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    from jwt.algorithms import ECAlgorithm

    private = ECAlgorithm.to_jwk(key, as_dict=True)
    assert "d" in private
    refused(craft(key, header={"jwk": private}), "private")


def test_a_proof_with_a_symmetric_jwk_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}), "private or symmetric")


def test_a_jwk_labelled_for_another_alg_or_for_encryption_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    jwk = public_jwk(key.public_key())
    refused(craft(key, header={"jwk": {**jwk, "alg": "ES384"}}), "signature key")
    refused(craft(key, header={"jwk": {**jwk, "use": "enc"}}), "signature key")


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    refused(craft(key, signing_key=other), "signature")


def test_a_tampered_proof_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    header, payload, signature = craft(key).split(".")
    other_payload = craft(key, claims={"htu": "https://as.example.com/other"}).split(".")[1]
    refused(f"{header}.{other_payload}.{signature}", "signature")
    refused(f"{header}.{payload}.{signature[:-4]}", "signature")


def test_a_proof_with_critical_extensions_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, header={"crit": ["exp"], "exp": 1}), "critical")


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the attack)
    refused(craft(weak, "RS256"), "2048")


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_a_proof_missing_a_required_claim_is_refused(key: ec.EllipticCurvePrivateKey, claim: str) -> None:
    refused(craft(key, claims={claim: DROP}), claim)


def test_an_oversized_jti_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, claims={"jti": "j" * 257}), "jti")
    refused(craft(key, claims={"jti": ""}), "jti")
    refused(craft(key, claims={"jti": 12345}), "jti")


def test_a_payload_that_is_not_an_object_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key.public_key())}
    refused(sign_raw(header, ["not", "an", "object"], key, "ES256"), "payload")  # type: ignore[arg-type]


@pytest.mark.parametrize("htm", ["GET", "post", "PUT", ""])
def test_a_proof_for_another_method_is_refused(key: ec.EllipticCurvePrivateKey, htm: str) -> None:
    refused(craft(key, method=htm), "htm")


@pytest.mark.parametrize(
    "htu",
    [
        "https://as.example.com/authorize",
        "https://as.example.com/token/",
        "https://other.example.com/token",
        "http://as.example.com/token",
        "https://as.example.com:8443/token",
        "https://user@as.example.com/token",
        "https://as.example.com/%74oken2",
        "/token",
        "urn:example:token",
        "https://[::1/token",
    ],
)
def test_a_proof_for_another_uri_is_refused(key: ec.EllipticCurvePrivateKey, htu: str) -> None:
    refused(craft(key, url=htu), "htu")


@pytest.mark.parametrize(
    "htu",
    [
        "https://AS.Example.COM/token",
        "HTTPS://as.example.com/token",
        "https://as.example.com:443/token",
        "https://as.example.com/%74oken",
        "https://as.example.com/./token",
        "https://as.example.com/x/../token",
        "https://as.example.com/token?query=ignored",
        "https://as.example.com/token#fragment",
    ],
)
def test_htu_is_compared_after_rfc3986_normalisation_without_query_or_fragment(
    key: ec.EllipticCurvePrivateKey, htu: str
) -> None:
    verifier().check(craft(key, url=htu), method="POST", url=URL)


def test_normalisation_keeps_what_rfc3986_keeps() -> None:
    assert normalized_htu("http://h:80") == "http://h/"
    assert normalized_htu("http://[::1]:9000/mcp") == "http://[::1]:9000/mcp"
    assert normalized_htu("https://h/a%2fb%7e") == "https://h/a%2Fb~"
    assert normalized_htu("https://h/a/b/../../..") == "https://h/"


def test_a_stale_proof_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, claims={"iat": int(time.time()) - 61}), "too old")


def test_a_proof_from_the_future_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, claims={"iat": int(time.time()) + 11}), "future")


def test_a_little_clock_skew_is_tolerated(key: ec.EllipticCurvePrivateKey) -> None:
    now = int(time.time())
    for iat in (now - 55, now + 5, now + 0.5):
        verifier().check(craft(key, claims={"iat": iat}), method="POST", url=URL)


@pytest.mark.parametrize("iat", ["1700000000", True, None, float("inf")])
def test_an_iat_that_is_not_a_numeric_date_is_refused(key: ec.EllipticCurvePrivateKey, iat: Any) -> None:
    refused(craft(key, claims={"iat": iat}), "iat|well-formed")


def jkt(key: ec.EllipticCurvePrivateKey) -> str:
    return jwk_thumbprint(key.public_key())


def test_a_proof_without_ath_is_refused_with_an_access_token(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key), "ath", access_token=TOKEN, bound_jkt=jkt(key))


def test_a_proof_for_another_access_token_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    refused(craft(key, access_token="another.access.token"), "ath", access_token=TOKEN, bound_jkt=jkt(key))


def test_a_proof_by_another_key_than_the_tokens_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    thief = ec.generate_private_key(ec.SECP256R1())
    refused(
        craft(thief, access_token=TOKEN),
        "key the access token is bound to",
        access_token=TOKEN,
        bound_jkt=jkt(key),
    )
    refused(craft(key, access_token=TOKEN), "key the access token is bound to", access_token=TOKEN)  # unbound


def test_a_proof_with_the_tokens_hash_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    verifier().check(
        craft(key, access_token=TOKEN), method="POST", url=URL, access_token=TOKEN, bound_jkt=jkt(key)
    )
    # RFC 9449 §7.1, figure 14: the example token and its ath.
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


def nonces(now: float) -> DPoPNonces:
    return DPoPNonces(b"0123456789abcdef0123456789abcdef", context=URL, now=lambda: now)


def test_a_proof_without_the_nonce_is_refused_with_use_dpop_nonce(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(UseDPoPNonce) as caught:
        verifier(nonces=nonces(time.time())).check(craft(key), method="POST", url=URL)
    assert caught.value.error == "use_dpop_nonce"


def test_a_proof_with_a_made_up_or_expired_nonce_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    now = time.time()
    stale = nonces(now - 120).current()
    for nonce in (stale, "123.abc", "", 42):
        with pytest.raises(UseDPoPNonce):
            verifier(nonces=nonces(now)).check(craft(key, claims={"nonce": nonce}), method="POST", url=URL)


def test_a_proof_with_the_current_nonce_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    now = time.time()
    proof = craft(key, claims={"nonce": nonces(now).current()})
    verifier(nonces=nonces(now)).check(proof, method="POST", url=URL)


def test_an_otherwise_invalid_proof_is_invalid_before_it_lacks_a_nonce(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    with pytest.raises(InvalidDPoPProof) as caught:
        verifier(nonces=nonces(time.time())).check(craft(key, method="GET"), method="POST", url=URL)
    assert caught.value.error == "invalid_dpop_proof"


async def test_a_replayed_proof_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    checker = verifier()
    proof = craft(key)
    await checker.verify(proof, method="POST", url=URL)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        await checker.verify(proof, method="POST", url=URL)


async def test_a_refused_proof_does_not_spend_its_jti(key: ec.EllipticCurvePrivateKey) -> None:
    checker = verifier()
    with pytest.raises(InvalidDPoPProof):
        await checker.verify(craft(key, claims={"jti": "j1"}), method="GET", url=URL)
    await checker.verify(craft(key, claims={"jti": "j1"}), method="POST", url=URL)


async def test_one_jti_from_two_keys_is_two_proofs(key: ec.EllipticCurvePrivateKey) -> None:
    checker = verifier()
    other = ec.generate_private_key(ec.SECP256R1())
    await checker.verify(craft(key, claims={"jti": "shared"}), method="POST", url=URL)
    await checker.verify(craft(other, claims={"jti": "shared"}), method="POST", url=URL)


async def test_a_lone_surrogate_in_jti_or_ath_is_an_answer_not_an_exception(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    # JSON's "\ud800" parses to a str that cannot be encoded as UTF-8: it once escaped as a 500.
    checker = verifier()
    await checker.verify(craft(key, claims={"jti": "\ud800"}), method="POST", url=URL)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        await checker.verify(craft(key, claims={"jti": "\ud800"}), method="POST", url=URL)
    refused(
        craft(key, access_token=TOKEN, claims={"ath": "\ud800"}),
        "ath",
        access_token=TOKEN,
        bound_jkt=jkt(key),
    )
