"""The bounds on fetching from hosts anyone may name (oauth/outbound_fetches.py), one property per test."""

from __future__ import annotations

import asyncio
import time

import pytest

from mcp_auth_server import clock
from mcp_auth_server.oauth.outbound_fetches import FetchLimits, FetchRefused, HostFailure, OutboundFetches

FAST = FetchLimits(deadline_seconds=0.2, per_host=2, overall=3, failing_host_seconds=30, remembered_hosts=3)


async def test_a_fetch_that_outlives_the_deadline_is_refused_and_its_host_remembered() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)
    started = time.monotonic()
    with pytest.raises(FetchRefused, match=r"within 0\.2 seconds"):
        await fetches.fetch("slow.example", "https://slow.example/a", lambda: asyncio.sleep(10, "late"))
    assert time.monotonic() - started < 1
    calls: list[str] = []

    async def counted() -> str:
        calls.append("x")
        return "document"

    with pytest.raises(FetchRefused, match="failed recently"):
        await fetches.fetch("slow.example", "https://slow.example/b", counted)
    assert calls == []  # refused without asking
    assert await fetches.fetch("other.example", "https://other.example/a", counted) == "document"


async def test_a_failing_host_is_tried_again_after_the_memory_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)

    async def unreachable() -> str:
        raise HostFailure("down.example could not be reached")

    with pytest.raises(FetchRefused, match="could not be reached"):
        await fetches.fetch("down.example", "https://down.example/a", unreachable)
    assert fetches.is_failing("down.example")
    later = time.time() + 31
    monkeypatch.setattr(clock, "time", type("Later", (), {"time": staticmethod(lambda: later)}))
    assert not fetches.is_failing("down.example")


async def test_a_refused_answer_is_not_held_against_the_host() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)

    async def refused() -> str:
        raise ValueError("the document's client_id differs")

    with pytest.raises(ValueError, match="differs"):
        await fetches.fetch("ok.example", "https://ok.example/a", refused)
    assert not fetches.is_failing("ok.example")


async def test_concurrent_requests_for_one_url_share_one_fetch() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)
    calls: list[str] = []

    async def once() -> str:
        calls.append("x")
        await asyncio.sleep(0.05)
        return "document"

    answers = await asyncio.gather(
        *(fetches.fetch("h.example", "https://h.example/a", once) for _ in range(10))
    )
    assert answers == ["document"] * 10
    assert calls == ["x"]


async def test_at_most_per_host_fetches_run_at_once_for_one_host() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)
    running, most = 0, 0

    async def tracked() -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return "document"

    urls = [f"https://h.example/{n}" for n in range(6)]
    await asyncio.gather(*(fetches.fetch("h.example", url, tracked) for url in urls))
    assert most == FAST.per_host


async def test_the_memory_of_failing_hosts_is_bounded() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(FAST)

    async def unreachable() -> str:
        raise HostFailure("unreachable")

    for n in range(10):
        with pytest.raises(FetchRefused):
            await fetches.fetch(f"h{n}.example", f"https://h{n}.example/a", unreachable)
    remembered = [n for n in range(10) if fetches.is_failing(f"h{n}.example")]
    assert remembered == [7, 8, 9]  # the newest, at most remembered_hosts of them
