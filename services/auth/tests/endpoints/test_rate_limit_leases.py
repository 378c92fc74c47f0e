"""Leased rate-limit units (web/rate_limit_leases.py): replicas sharing Redis never allow more than the rate
together, a busy key costs a round trip per lease rather than per request, and a quiet key is counted
exactly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerMinute
from redis.asyncio import Redis

from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.web.rate_limit_leases import Leases
from mcp_auth_server.web.rate_limits import FailOpenStore, rate_limit_store
from mcp_testing.redis_server import RedisServer

RATE = 10_000
ITEM = RateLimitItemPerMinute(RATE)
KEY = ("token", "client", "busy")


def redis_store(make_settings: Callable[..., AuthSettings], url: str) -> FailOpenStore:
    return rate_limit_store(make_settings(auth_rate_limits=True, auth_redis_url=url))


async def scripts_run(url: str) -> int:
    """How many Lua scripts (the `limits` library's counting) Redis has run: its round trips."""
    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


async def test_replicas_leasing_units_never_allow_more_than_the_rate_together(
    make_settings: Callable[..., AuthSettings],
) -> None:
    """The attack: a busy client spreads its requests over every replica, in bursts, hoping that units
    each replica holds back let them all through. Units are counted when leased, so they cannot."""
    with RedisServer() as redis:
        replicas = [redis_store(make_settings, redis.url) for _ in range(2)]
        sender = random.Random(7)

        async def bursts(count: int) -> int:
            """`count` bursts of 20 requests in flight, each to a replica chosen at random: how many pass."""
            allowed = 0
            for _ in range(count):
                burst = [sender.choice(replicas).hit(ITEM, *KEY) for _ in range(20)]
                allowed += sum(wait is None for wait in await asyncio.gather(*burst))
            return allowed

        try:
            below = await bursts(450)  # 9,000 requests: within the rate, less what leases may hold back
            round_trips = await scripts_run(redis.url)
            beyond = await bursts(75)  # 1,500 more: the rate is reached
        finally:
            for replica in replicas:
                await replica.aclose()
    assert below == 9000
    assert round_trips < 9000 / 10  # leased, not counted one request at a time
    assert below + beyond <= RATE
    # What leases may cost the key: the units each replica still holds, at most a lease each.
    assert below + beyond >= RATE - len(replicas) * (RATE // 100)


def leases_taken(
    leases: Leases, item: RateLimitItem, requests: int, interval: float, clock: list[float]
) -> list[int]:
    """The sizes of the leases `requests` requests, one every `interval` seconds, take (none refused)."""
    sizes = []
    for _ in range(requests):
        if not leases.take(KEY):
            size = leases.next_size(item, KEY)
            leases.keep(item, KEY, size)
            sizes.append(size)
        clock[0] += interval
    return sizes


async def test_a_busy_key_leases_half_a_second_of_its_traffic() -> None:
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    large = RateLimitItemPerMinute(1_000_000)  # leases of up to 10,000 units
    sizes = leases_taken(leases, large, 5000, 0.001, clock)  # 1,000 requests a second
    assert sizes[:6] == [1, 2, 4, 8, 16, 32]  # growing, at most twofold
    assert sizes[-1] == 500  # half a second of 1,000 a second, not 10,000: they would expire unused
    assert len(sizes) < 30  # 5,000 requests, fewer than 30 round trips


async def test_a_busy_key_pausing_between_runs_keeps_leasing() -> None:
    """A machine client busy for a few seconds, then quiet, then busy again: the half-second lease it
    leaves at each pause is a sliver of its limit, so its next run is leased again, not counted one
    request at a time."""
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    large = RateLimitItemPerMinute(1_000_000)
    for _ in range(5):
        sizes = leases_taken(leases, large, 3000, 0.001, clock)  # three seconds at 1,000 a second
        assert len(sizes) < 30
        clock[0] += 10.0


async def test_a_quiet_key_is_counted_exactly() -> None:
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    assert leases_taken(leases, ITEM, 20, 1.0, clock) == [1] * 20  # one a second: one unit at a time


async def test_leases_are_at_most_a_hundredth_of_the_limit() -> None:
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    assert max(leases_taken(leases, ITEM, 5000, 0.0001, clock)) == RATE // 100  # 10,000 a second
    small = RateLimitItemPerMinute(60)
    assert leases_taken(Leases(lambda: clock[0]), small, 50, 0.0001, clock) == [1] * 50


async def test_a_key_whose_traffic_stops_mid_lease_starts_again_at_one_unit() -> None:
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    leases_taken(leases, ITEM, 500, 0.001, clock)
    assert leases.has_units(KEY)
    clock[0] += 3.0  # a twentieth of the minute: the units left are dropped
    assert not leases.has_units(KEY)
    assert not leases.take(KEY)
    assert leases.next_size(ITEM, KEY) == 1


async def test_requests_arriving_while_a_lease_is_taken_ask_for_one_unit_each() -> None:
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    leases_taken(leases, ITEM, 3, 0.001, clock)
    leasing = leases.next_size(ITEM, KEY)
    assert leasing > 1
    assert leases.next_size(ITEM, KEY) == 1  # not a whole lease for each request in flight
    leases.keep(ITEM, KEY, 1)
    leases.keep(ITEM, KEY, leasing)
    assert sum(leases.take(KEY) for _ in range(leasing)) == leasing - 1


async def test_a_refused_lease_still_lets_the_last_unit_through(
    make_settings: Callable[..., AuthSettings],
) -> None:
    """Less than a lease left of the budget: the request gets its one unit, and then the key is refused."""
    with RedisServer() as redis:
        store = redis_store(make_settings, redis.url)
        try:
            item = RateLimitItemPerMinute(300)  # leases of up to three units
            waits = [await store.hit(item, *KEY) for _ in range(301)]
        finally:
            await store.aclose()
    assert waits[:300] == [None] * 300
    assert waits[300] is not None
    assert waits[300] >= 1


async def test_a_key_whose_traffic_comes_in_bursts_loses_at_most_two_hundredths_of_its_limit_a_period() -> (
    None
):
    """The attack on the bound: a key (a client's own busy job) sends a quick run of requests every few
    seconds, each run growing leases that it leaves mostly unused when it stops. What leases cost it must
    stay about a hundredth of its limit per period, not a lease each time its traffic stops (which would
    refuse it well below its rate)."""
    clock = [0.0]
    leases = Leases(lambda: clock[0])
    item = RateLimitItemPerMinute(600)  # the default token rate: leases of up to six units
    counted = used = 0
    while clock[0] < 60:
        start = clock[0]
        for _ in range(14):  # 1, 2, 4 and 6 units used, then a lease of 6 of which one is
            if not leases.take(KEY):
                size = leases.next_size(item, KEY)
                leases.keep(item, KEY, size)
                counted += size
            used += 1
            clock[0] += 0.001
        clock[0] = start + 3.1  # just after the last lease expired
    assert counted - used <= 2 * (item.amount // 100)  # lost before the threshold, and the lease crossing it
