"""The key cache follows cache headers, picks up rotated keys, resists kid floods, and survives outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio

from mcp_auth_kit import JWKSCache
from mcp_auth_kit.jwks import cache_lifetime, parse_jwks
from mcp_auth_kit.rfc8414_discovery import DiscoveryError, IssuerMismatch, fetch_metadata, metadata_url

from .conftest import IssuerStandIn, Signer, make_signer, unused_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def make_cache(issuer: IssuerStandIn, clock: FakeClock) -> AsyncIterator[Callable[..., JWKSCache]]:
    caches: list[JWKSCache] = []

    def make(**options: float) -> JWKSCache:
        cache = JWKSCache(issuer.url, clock=clock, **options)  # type: ignore[arg-type]
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.aclose()


async def settle() -> None:
    """Let a background refresh task run to completion."""
    import asyncio

    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_keys_are_loaded_from_the_metadata_jwks_uri(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, es256: Signer
) -> None:
    cache = make_cache()
    loaded_before = cache.loaded
    key = await cache.get(es256.kid)
    assert not loaded_before
    assert cache.loaded
    assert key is not None
    assert key.algorithm == "ES256"
    assert (issuer.metadata_hits, issuer.jwks_hits) == (1, 1)


async def test_keys_are_refreshed_after_max_age_in_the_background(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    issuer.cache_control = "public, max-age=60"
    cache = make_cache()
    await cache.get(es256.kid)
    clock.now += 59
    await cache.get(es256.kid)
    await settle()
    assert issuer.jwks_hits == 1
    clock.now += 2
    assert await cache.get(es256.kid) is not None  # served from the keys in hand while refreshing
    await settle()
    assert issuer.jwks_hits == 2


async def test_unknown_kid_refetches_at_most_once_per_interval(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    cache = make_cache(refetch_interval=10.0)
    await cache.get(es256.kid)
    clock.now += 11
    for i in range(50):
        assert await cache.get(f"junk-{i}") is None
    assert issuer.jwks_hits == 2  # the initial load and one refetch for the whole flood
    clock.now += 11
    assert await cache.get("junk-again") is None
    assert issuer.jwks_hits == 3


async def test_rotated_key_is_picked_up_on_first_sight(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    cache = make_cache()
    await cache.get(es256.kid)
    rotated = make_signer("ES256", "rotated")
    issuer.signers.append(rotated)
    clock.now += 10
    key = await cache.get("rotated")
    assert key is not None
    assert key.kid == "rotated"


async def test_a_key_published_right_after_a_routine_fetch_is_learned_at_once(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    # A replica fetched the JWKS a second ago; a rotation must not wait out the refetch interval.
    cache = make_cache(refetch_interval=10.0)
    await cache.get(es256.kid)
    issuer.signers.append(make_signer("ES256", "just-rotated"))
    clock.now += 1
    key = await cache.get("just-rotated")
    assert key is not None
    assert issuer.jwks_hits == 2


async def test_auth_service_down_keeps_cached_keys(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    issuer.cache_control = "max-age=60"
    cache = make_cache()
    await cache.get(es256.kid)
    issuer.down = True
    clock.now += 3600
    assert await cache.get(es256.kid) is not None
    await settle()
    assert issuer.jwks_hits == 2  # it tried, failed, and kept the keys
    assert await cache.get(es256.kid) is not None
    assert cache.loaded


async def test_unreachable_auth_service_keeps_cached_keys(issuer: IssuerStandIn, es256: Signer) -> None:
    clock = FakeClock()
    cache = JWKSCache(issuer.url, clock=clock)
    await cache.get(es256.kid)
    gone = f"http://127.0.0.1:{unused_port()}/jwks.json"
    cache._jwks_uri = gone  # the auth service is gone
    with pytest.raises(DiscoveryError, match=f"cannot fetch {gone}: ConnectError"):
        await cache.refresh()
    assert await cache.get(es256.kid) is not None
    assert cache.problem is not None
    assert gone in cache.problem
    await cache.aclose()


async def test_first_load_failure_is_retried_after_the_interval(
    make_cache: Callable[..., JWKSCache], issuer: IssuerStandIn, clock: FakeClock, es256: Signer
) -> None:
    issuer.down = True
    cache = make_cache(refetch_interval=10.0)
    assert await cache.get(es256.kid) is None
    assert await cache.get(es256.kid) is None
    assert issuer.metadata_hits == 1  # no retry storm while the auth service is down
    issuer.down = False
    clock.now += 10
    assert await cache.ensure_loaded()
    assert await cache.get(es256.kid) is not None


def test_metadata_url_inserts_well_known_before_the_issuer_path() -> None:
    assert (
        metadata_url("http://127.0.0.1:9000")
        == "http://127.0.0.1:9000/.well-known/oauth-authorization-server"
    )
    assert metadata_url("https://a.example/t") == "https://a.example/.well-known/oauth-authorization-server/t"


async def test_metadata_naming_another_issuer_is_refused(issuer: IssuerStandIn) -> None:
    async with httpx.AsyncClient() as client:
        assert (await fetch_metadata(client, issuer.url))["issuer"] == issuer.url
        # RFC 8414 §3.3: a trailing slash is another issuer (the metadata URL is the same).
        with pytest.raises(IssuerMismatch) as mismatch:
            await fetch_metadata(client, issuer.url + "/")
    # One line an operator can act on: what was configured, what the auth service says, and where.
    assert str(mismatch.value) == (
        f"issuer mismatch: configured '{issuer.url}/', but {metadata_url(issuer.url)} names "
        f"'{issuer.url}'; set the issuer to exactly the string the auth service publishes"
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=120", 120.0),
        ('max-age="90"', 90.0),
        ("MAX-AGE=45, must-revalidate", 45.0),
        ("max-age=1", 10.0),  # clamped up: no fetch storms
        ("max-age=99999999", 86400.0),
        ("no-store", 10.0),
        ("public, no-cache", 10.0),
        ("public", 300.0),
        (None, 300.0),
        ("s-maxage=5", 300.0),
    ],
)
def test_cache_lifetime_follows_cache_control(header: str | None, seconds: float) -> None:
    assert cache_lifetime(header, default=300.0, minimum=10.0, maximum=86400.0) == seconds


def test_unusable_jwks_entries_are_skipped(es256: Signer, rs256: Signer) -> None:
    document = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**es256.jwk, "kid": "encryption", "use": "enc"},
            {**es256.jwk, "kid": "private", "d": "AAAA"},
            {**es256.jwk, "kid": "mislabelled", "alg": "ES384"},
            {**rs256.jwk, "kid": "broken", "n": "!!"},
            {"kty": "EC", "crv": "P-256"},
            "not a key",
            es256.jwk,
            {**rs256.jwk, "kid": es256.kid},  # duplicate kid: the first one wins
        ]
    }
    keys = parse_jwks(document, {})
    assert list(keys) == [es256.kid]
    assert keys[es256.kid].algorithm == "ES256"


def test_jwks_without_keys_is_an_error() -> None:
    with pytest.raises(ValueError, match="no keys"):
        parse_jwks({"keys": {}}, {})
