"""Aiming the metadata-document fetch bounds at someone else's host (oauth/outbound_fetches.py).

Anyone can name document hosts of their own (a wildcard DNS zone gives any number of them) that answer
slowly, and so fill every overall fetch slot. A well-behaved host's fetch (claude.ai's document, when its
stored copy expires) then waits for a slot until the deadline: that request is refused, but the host did
nothing wrong and must not be remembered as failing, which would refuse its clients for everyone for
`failing_host_seconds` after the attacker stops.
"""

from __future__ import annotations

import asyncio

from mcp_auth_server.oauth.outbound_fetches import FetchLimits, OutboundFetches

LIMITS = FetchLimits(deadline_seconds=0.3, per_host=2, overall=4, failing_host_seconds=30)


async def test_slow_hosts_filling_every_fetch_slot_do_not_get_a_good_host_remembered_as_failing() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(LIMITS)

    async def dribbling() -> str:
        return await asyncio.sleep(10, "late")

    async def good() -> str:
        return await asyncio.sleep(0.05, "document")  # a real host's round trips

    attackers: list[asyncio.Future[str]] = []
    for n in range(120):  # a steady stream of fresh slow hosts, as a wildcard DNS zone gives
        host = f"a{n}.evil.example"
        attackers.append(asyncio.ensure_future(fetches.fetch(host, f"https://{host}/x", dribbling)))
        await asyncio.sleep(0.005)
        if n == 30:  # every slot is taken and more are queued: the good host's document is needed now
            victim = asyncio.ensure_future(fetches.fetch("claude.ai", "https://claude.ai/oauth/client", good))
    await asyncio.gather(victim, *attackers, return_exceptions=True)
    assert fetches.is_failing("a0.evil.example")  # a slow host that had its slot is remembered
    assert not fetches.is_failing("claude.ai")  # it was never given its time: nothing to hold against it
    assert await fetches.fetch("claude.ai", "https://claude.ai/oauth/client", good) == "document"
