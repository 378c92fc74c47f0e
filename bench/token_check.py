"""Measures what a token check costs: the kit's verifier, cold and cached, against raw `cryptography` verify.

    uv run python bench/token_check.py

For ES256 and RS256: median µs per token over interleaved rounds of distinct tokens, of
(1) raw `cryptography` signature verification of the same tokens (the floor any correct check pays),
(2) `JWTVerifier.verify` with an empty verified-token cache (full RFC 9068 check), and
(3) the same tokens again (cache hits). Targets: cold <= 3x raw, cached <= 1x raw.
PyJWT's `jwt.decode` is shown for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mcp_auth_kit import JWKSCache, JWTVerifier

ISSUER = "http://127.0.0.1:9000"
RESOURCE = "http://127.0.0.1:9101/mcp"


def make_key(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def mint(alg: str, key: Any, count: int) -> list[str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "user-1",
        "client_id": "client-1",
        "scope": "mcp:tools",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "preferred_username": "octocat",
    }
    headers = {"typ": "at+jwt", "kid": f"{alg}-key"}
    return [
        jwt.encode({**claims, "jti": uuid.uuid4().hex}, key, algorithm=alg, headers=headers)
        for _ in range(count)
    ]


def raw_verifier(alg: str, public_key: Any) -> Callable[[str], None]:
    """Just the signature check, straight on `cryptography` (what a hand-written check could not go below)."""

    def verify(token: str) -> None:
        signing_input, _, signature_b64 = token.rpartition(".")
        signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
        if alg == "ES256":
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    return verify


def jwks_client(alg: str, public_key: Any) -> httpx.AsyncClient:
    """An httpx client whose transport answers the JWKS request in-process, so no network is timed."""
    jwk = {**jwt.get_algorithm_by_name(alg).to_jwk(public_key, as_dict=True), "kid": f"{alg}-key", "alg": alg}

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [jwk]}, headers={"Cache-Control": "max-age=3600"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def per_token_us(tokens: list[str], check: Callable[[str], Awaitable[Any] | None]) -> float:
    started = time.perf_counter_ns()
    for token in tokens:
        result = check(token)
        if result is not None:
            await result
    return (time.perf_counter_ns() - started) / len(tokens) / 1000


async def bench(alg: str, count: int, rounds: int) -> dict[str, float]:
    key = make_key(alg)
    public_key = key.public_key()
    jwks = JWKSCache(ISSUER, http_client=jwks_client(alg, public_key), jwks_uri=f"{ISSUER}/jwks.json")
    await jwks.ensure_loaded()
    raw = raw_verifier(alg, public_key)

    def pyjwt(token: str) -> None:
        jwt.decode(token, public_key, algorithms=[alg], audience=RESOURCE, issuer=ISSUER)

    samples: dict[str, list[float]] = {"raw": [], "cold": [], "cached": [], "pyjwt": []}
    for _ in range(rounds):
        tokens = mint(alg, key, count)  # fresh tokens: nothing is cached anywhere
        verifier = JWTVerifier(issuer=ISSUER, resource_url=RESOURCE, jwks=jwks, cache_size=count)
        samples["raw"].append(await per_token_us(tokens, raw))
        samples["cold"].append(await per_token_us(tokens, verifier.verify))
        samples["cached"].append(await per_token_us(tokens, verifier.verify))
        samples["pyjwt"].append(await per_token_us(tokens, pyjwt))
    await jwks.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=1000, help="distinct tokens per round")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    print(f"median µs per token check ({options.tokens} tokens x {options.rounds} interleaved rounds)")
    columns = ("raw verify", "kit cold", "kit cached", "pyjwt", "cold/raw", "cached/raw")
    print(f"{'alg':6}" + "".join(f"{column:>12}" for column in columns))
    for alg in ("ES256", "RS256"):
        m = await bench(alg, options.tokens, options.rounds)
        print(
            f"{alg:6}{m['raw']:12.1f}{m['cold']:12.1f}{m['cached']:12.2f}{m['pyjwt']:12.1f}"
            f"{m['cold'] / m['raw']:11.2f}x{m['cached'] / m['raw']:11.3f}x"
        )
    print("targets: cold/raw <= 3x, cached/raw <= 1x")


if __name__ == "__main__":
    asyncio.run(main())
